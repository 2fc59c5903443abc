#include "store.hpp"

#include "privileged.hpp"

extern "C" {
#include "catalog/pg_type_d.h"
#include "utils/datum.h"
#include "utils/timestamp.h"
}

namespace config_guard {
namespace {

SPIPlanPtr lookup_plan = nullptr;
SPIPlanPtr store_plan = nullptr;
SPIPlanPtr generation_plan = nullptr;

}  // namespace

StoredDocument LookupDocument(const ConfigDef& def, const char* tenant, bool new_snapshot) {
  Oid types[2] = {INT4OID, TEXTOID};
  KeptPlan(&lookup_plan,
           "SELECT d.document, "
           "       (EXTRACT(EPOCH FROM pg_catalog.clock_timestamp() - d.built_at) * 1000000)::pg_catalog.int8, "
           "       NOT EXISTS (SELECT FROM config_guard.invalidations i "
           "                    WHERE i.config_id = $1 AND (i.tenant = $2 OR i.tenant IS NULL) "
           "                      AND NOT pg_catalog.pg_visible_in_snapshot(i.xid, d.snapshot)) "
           "  FROM config_guard.documents d WHERE d.config_id = $1 AND d.tenant = $2",
           2, types);
  Datum values[2] = {Int32GetDatum(def.config_id), CStringGetTextDatum(tenant)};
  // Not read-only in READ COMMITTED: SPI then takes a new snapshot, which sees
  // a rebuild that committed while this caller waited for it.
  ExecutePlanAs(ExtensionOwner(), lookup_plan, values, nullptr, !new_snapshot, SPI_OK_SELECT);

  StoredDocument doc = {};
  if (SPI_processed == 0) return doc;
  HeapTuple row = SPI_tuptable->vals[0];
  TupleDesc desc = SPI_tuptable->tupdesc;
  bool isnull = false;
  doc.found = true;
  doc.document = SPI_getbinval(row, desc, 1, &isnull);
  doc.age_us = DatumGetInt64(SPI_getbinval(row, desc, 2, &isnull));
  doc.fresh = DatumGetBool(SPI_getbinval(row, desc, 3, &isnull));
  return doc;
}

void StoreDocument(const ConfigDef& def, const char* tenant, Datum document, Datum snapshot, TimestampTz built_at,
                   double build_ms) {
  Oid types[6] = {INT4OID, TEXTOID, JSONBOID, PG_SNAPSHOTOID, TIMESTAMPTZOID, FLOAT8OID};
  KeptPlan(&store_plan,
           "WITH folded AS ("
           "  DELETE FROM config_guard.invalidations i"
           "   WHERE i.config_id = $1 AND i.tenant = $2 AND pg_catalog.pg_visible_in_snapshot(i.xid, $4)"
           "  RETURNING 1) "
           "INSERT INTO config_guard.documents AS d "
           "       (config_id, tenant, document, snapshot, built_at, build_ms, compacted) "
           "VALUES ($1, $2, $3, $4, $5, $6, (SELECT pg_catalog.count(*) FROM folded)) "
           "ON CONFLICT (config_id, tenant) DO UPDATE SET document = EXCLUDED.document, "
           "  snapshot = EXCLUDED.snapshot, built_at = EXCLUDED.built_at, build_ms = EXCLUDED.build_ms, "
           "  compacted = d.compacted + EXCLUDED.compacted",
           6, types);
  Datum values[6] = {Int32GetDatum(def.config_id), CStringGetTextDatum(tenant), document, snapshot,
                     TimestampTzGetDatum(built_at), Float8GetDatum(build_ms)};
  ExecutePlanAs(ExtensionOwner(), store_plan, values, nullptr, false, SPI_OK_INSERT);
}

int64 TenantGeneration(const ConfigDef& def, const char* tenant) {
  Oid types[2] = {INT4OID, TEXTOID};
  KeptPlan(&generation_plan,
           "SELECT coalesce((SELECT d.compacted FROM config_guard.documents d "
           "                  WHERE d.config_id = $1 AND d.tenant = $2), 0) "
           "     + (SELECT pg_catalog.count(*) FROM config_guard.invalidations i "
           "         WHERE i.config_id = $1 AND (i.tenant = $2 OR i.tenant IS NULL))",
           2, types);
  Datum values[2] = {Int32GetDatum(def.config_id), CStringGetTextDatum(tenant)};
  ExecutePlanAs(ExtensionOwner(), generation_plan, values, nullptr, true, SPI_OK_SELECT);
  bool isnull = false;
  return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

void ForgetConfig(int32 config_id) {
  Oid types[1] = {INT4OID};
  Datum values[1] = {Int32GetDatum(config_id)};
  ExecuteAs(ExtensionOwner(), "DELETE FROM config_guard.invalidations WHERE config_id = $1", 1, types, values, nullptr,
            SPI_OK_DELETE);
  ExecuteAs(ExtensionOwner(), "DELETE FROM config_guard.documents WHERE config_id = $1", 1, types, values, nullptr,
            SPI_OK_DELETE);
}

}  // namespace config_guard

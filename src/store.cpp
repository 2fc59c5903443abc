#include "store.hpp"
#include "mark_append.hpp"
#include "mark_skip.hpp"

#include "export_versions.hpp"
#include "gateway.hpp"

extern "C" {
#include "access/xact.h"
#include "utils/snapmgr.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_collation_d.h"
#include "catalog/pg_type_d.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/rel.h"
#include "utils/datum.h"
#include "utils/timestamp.h"
}

namespace config_guard {
namespace {

// Column numbers of config_guard.documents and config_guard.invalidations
// (the same for the columns both tables share), as the 0.2 script creates them.
constexpr AttrNumber kConfigIdAttr = 1;
constexpr AttrNumber kTenantAttr = 2;
constexpr AttrNumber kDocumentAttr = 3;
constexpr AttrNumber kBuiltAtAttr = 4;
constexpr AttrNumber kSnapshotAttr = 5;
constexpr AttrNumber kXidAttr = 3;

}  // namespace

StoredDocument LookupDocument(const ConfigDef& def, const char* tenant, Snapshot snapshot,
                              const DocumentVersion* known_fresh) {
  const CacheRelations rels = CacheTables();
  StoredDocument doc = {};
  Datum tenant_text = CStringGetTextDatum(tenant);

  Relation documents = table_open(rels.documents, AccessShareLock);
  ScanKeyData keys[2];
  ScanKeyInit(&keys[0], kConfigIdAttr, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(def.config_id));
  ScanKeyInit(&keys[1], kTenantAttr, BTEqualStrategyNumber, F_TEXTEQ, tenant_text);
  keys[1].sk_collation = DEFAULT_COLLATION_OID;
  SysScanDesc scan = systable_beginscan(documents, rels.documents_pkey, true, snapshot, 2, keys);
  HeapTuple tuple = systable_getnext(scan);
  Datum doc_snapshot = 0;
  if (HeapTupleIsValid(tuple)) {
    TupleDesc desc = RelationGetDescr(documents);
    bool isnull = false;
    doc.found = true;
    // Copies: the tuple lives in a shared buffer only while the scan is open.
    doc.document = PointerGetDatum(PG_DETOAST_DATUM_COPY(heap_getattr(tuple, kDocumentAttr, desc, &isnull)));
    doc_snapshot = PointerGetDatum(PG_DETOAST_DATUM_COPY(heap_getattr(tuple, kSnapshotAttr, desc, &isnull)));
    doc.age_us = GetCurrentTimestamp() - DatumGetTimestampTz(heap_getattr(tuple, kBuiltAtAttr, desc, &isnull));
    doc.version = {tuple->t_self, HeapTupleHeaderGetXmin(tuple->t_data)};
  }
  systable_endscan(scan);
  table_close(documents, AccessShareLock);
  if (!doc.found) return doc;
  // This transaction's own writes of the tenant whose marks wait for its
  // commit (mark_append.hpp).
  if (MarkPending(def.config_id, tenant)) return doc;
  if (known_fresh != nullptr && ItemPointerEquals(&doc.version.tid, const_cast<ItemPointerData*>(&known_fresh->tid)) &&
      doc.version.xmin == known_fresh->xmin) {
    doc.fresh = true;
    return doc;
  }

  // Fresh unless a mark the reader can see was invisible to the builder: one
  // probe for the tenant's marks, one for the config-wide marks.
  doc.fresh = true;
  Relation invalidations = table_open(rels.invalidations, AccessShareLock);
  TupleDesc desc = RelationGetDescr(invalidations);
  for (int pass = 0; pass < 2 && doc.fresh; ++pass) {
    ScanKeyInit(&keys[0], kConfigIdAttr, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(def.config_id));
    ScanKeyInit(&keys[1], kTenantAttr, BTEqualStrategyNumber, F_TEXTEQ, tenant_text);
    keys[1].sk_collation = DEFAULT_COLLATION_OID;
    const bool config_wide = pass == 1;
    scan = systable_beginscan(invalidations, config_wide ? rels.invalidations_config_wide : rels.invalidations_key,
                              true, snapshot, config_wide ? 1 : 2, keys);
    while (HeapTupleIsValid(tuple = systable_getnext(scan))) {
      CHECK_FOR_INTERRUPTS();
      bool isnull = false;
      const Datum xid = heap_getattr(tuple, kXidAttr, desc, &isnull);
      if (!DatumGetBool(DirectFunctionCall2(pg_visible_in_snapshot, xid, doc_snapshot))) {
        doc.fresh = false;
        break;
      }
    }
    systable_endscan(scan);
  }
  table_close(invalidations, AccessShareLock);
  return doc;
}

bool StoreDocument(const ConfigDef& def, const char* tenant, Datum document, Datum snapshot, TimestampTz built_at,
                   double build_ms, bool background, TimestampTz* replaced_built_at) {
  Datum values[7] = {
      Int32GetDatum(def.config_id), CStringGetTextDatum(tenant), document, snapshot, TimestampTzGetDatum(built_at),
      Float8GetDatum(build_ms),     BoolGetDatum(background)};
  RunAsOwner(Stmt::kStoreDocument, values);
  if (SPI_processed == 0) return false;
  // The statement folded the transaction's own marks of the tenant; those
  // still waiting for the commit go with them.
  FoldPendingMark(def.config_id, tenant);
  bool isnull = false;
  const bool replaced_background =
      DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
  if (isnull) return false;
  *replaced_built_at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
  return replaced_background;
}

bool TenantHasMarks(const ConfigDef& def, const char* tenant, Snapshot snapshot) {
  const CacheRelations rels = CacheTables();
  ScanKeyData keys[2];
  ScanKeyInit(&keys[0], kConfigIdAttr, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(def.config_id));
  ScanKeyInit(&keys[1], kTenantAttr, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(tenant));
  keys[1].sk_collation = DEFAULT_COLLATION_OID;
  Relation invalidations = table_open(rels.invalidations, AccessShareLock);
  SysScanDesc scan = systable_beginscan(invalidations, rels.invalidations_key, true, snapshot, 2, keys);
  const bool any = HeapTupleIsValid(systable_getnext(scan));
  systable_endscan(scan);
  table_close(invalidations, AccessShareLock);
  return any;
}

int64 TenantGeneration(const ConfigDef& def, const char* tenant) {
  // This transaction's own write counts: its mark written now, and read by
  // a copy of the active snapshot that sees it.
  const bool wrote = WritePendingMark(def.config_id, tenant);
  if (wrote) {
    CommandCounterIncrement();
    PushCopiedSnapshot(GetActiveSnapshot());
    UpdateActiveSnapshotCommandId();
  }
  Datum values[2] = {Int32GetDatum(def.config_id), CStringGetTextDatum(tenant)};
  RunAsOwner(Stmt::kGeneration, values);
  bool isnull = false;
  const int64 generation = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
  if (wrote) PopActiveSnapshot();
  return generation;
}

void ForgetConfig(int32 config_id) {
  // Its documents go with the registry row (ON DELETE CASCADE); marks have no key to cascade from.
  Datum values[1] = {Int32GetDatum(config_id)};
  FenceAllCoverings();  // (mark_skip.hpp)
  RunAsOwner(Stmt::kForgetMarks, values);
  ForgetExportVersions(config_id);
}

}  // namespace config_guard

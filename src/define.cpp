// config_guard.define() and config_guard.undefine(): validate a config and
// write it to the registry tables.
//
// The registry tables are writable only by their owner; these functions check
// the caller's rights, then write as that owner (privileged.hpp).
#include "module.hpp"
#include "pg_alloc.hpp"
#include "invalidation.hpp"
#include "privileged.hpp"
#include "registry.hpp"
#include "source_shape.hpp"
#include "store.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type_d.h"
#include "utils/acl.h"
#include "utils/regproc.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
}

namespace config_guard {
namespace {

SmallVector<Oid, 8> SourceList(ArrayType* arr) {
  Datum* elems = nullptr;
  bool* nulls = nullptr;
  int n = 0;
  deconstruct_array(arr, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT, &elems, &nulls, &n);
  if (n == 0)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("sources must name at least one table")));
  SmallVector<Oid, 8> sources;
  for (int i = 0; i < n; ++i) {
    if (nulls[i]) ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("sources must not contain null")));
    const Oid relid = DatumGetObjectId(elems[i]);
    for (Oid seen : sources) {
      if (seen == relid)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("source %s is listed more than once", get_rel_name(relid))));
    }
    sources.push_back(relid);
  }
  return sources;
}

void CheckBuilder(Oid builder, Oid tenant_type) {
  HeapTuple tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(builder));
  if (!HeapTupleIsValid(tuple)) elog(ERROR, "cache lookup failed for function %u", builder);
  auto* proc = reinterpret_cast<Form_pg_proc>(GETSTRUCT(tuple));
  const bool ok = proc->prokind == PROKIND_FUNCTION && proc->pronargs == 1 &&
                  proc->proargtypes.values[0] == tenant_type && proc->prorettype == JSONBOID && !proc->proretset;
  ReleaseSysCache(tuple);
  if (!ok)
    ereport(ERROR,
            (errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
             errmsg("builder %s must take one argument of type %s and return jsonb", format_procedure(builder),
                    format_type_be(tenant_type)),
             errhint("Declare it as CREATE FUNCTION ...(tenant %s) RETURNS jsonb.", format_type_be(tenant_type))));
  if (!pg_proc_ownercheck(builder, GetUserId()))
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                    errmsg("must be owner of builder function %s to use it in a config", format_procedure(builder))));
}

bool ConfigExists(const char* name) {
  Oid types[1] = {TEXTOID};
  Datum values[1] = {CStringGetTextDatum(name)};
  const int rc =
      SPI_execute_with_args("SELECT 1 FROM config_guard.configs WHERE name = $1", 1, types, values, nullptr, true, 1);
  if (rc != SPI_OK_SELECT) elog(ERROR, "registry lookup failed: %s", SPI_result_code_string(rc));
  return SPI_processed > 0;
}

}  // namespace

CG_FUNCTION(config_guard_define) {
  RequirePreloaded();
  for (int i = 0; i < 4; ++i) {
    if (PG_ARGISNULL(i))
      ereport(ERROR,
              (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("arguments of config_guard.define must not be null")));
  }
  char* name = text_to_cstring(PG_GETARG_TEXT_PP(0));
  const Oid builder = PG_GETARG_OID(1);
  SmallVector<Oid, 8> sources = SourceList(PG_GETARG_ARRAYTYPE_P(2));
  const char* tenant_column = NameStr(*PG_GETARG_NAME(3));
  ValidateConfigName(name);

  Oid tenant_type = InvalidOid;
  for (Oid relid : sources) {
    SourceShape shape;
    DescribeSource(relid, tenant_column, &shape);
    if (!pg_class_ownercheck(relid, GetUserId()))
      ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                      errmsg("must be owner of table %s to use it as a config source", shape.qualified_name)));
    if (tenant_type == InvalidOid) {
      tenant_type = shape.tenant_type;
    } else if (shape.tenant_type != tenant_type) {
      ereport(ERROR,
              (errcode(ERRCODE_DATATYPE_MISMATCH),
               errmsg("tenant column \"%s\" of source %s has type %s, but earlier sources have type %s", tenant_column,
                      shape.qualified_name, format_type_be(shape.tenant_type), format_type_be(tenant_type)),
               errdetail("All sources of a config share one tenant key type.")));
    }
  }
  CheckBuilder(builder, tenant_type);

  SPI_connect();
  if (ConfigExists(name))
    ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT), errmsg("config \"%s\" already exists", name),
                    errhint("Undefine it first with config_guard.undefine('%s').", name)));

  Oid config_types[5] = {TEXTOID, REGPROCEDUREOID, NAMEOID, REGTYPEOID, REGROLEOID};
  Datum config_values[5] = {CStringGetTextDatum(name), ObjectIdGetDatum(builder), PG_GETARG_DATUM(3),
                            ObjectIdGetDatum(tenant_type), ObjectIdGetDatum(GetUserId())};
  ExecuteAs(ExtensionOwner(),
            "INSERT INTO config_guard.configs (config_id, name, builder, tenant_column, tenant_type, owner) "
            "VALUES (pg_catalog.nextval('config_guard.config_id_seq'), $1, $2, $3, $4, $5) RETURNING config_id",
            5, config_types, config_values, nullptr, SPI_OK_INSERT_RETURNING);
  bool isnull = false;
  const Datum config_id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

  Oid source_types[2] = {INT4OID, REGCLASSARRAYOID};
  Datum source_values[2] = {config_id, PG_GETARG_DATUM(2)};
  ExecuteAs(ExtensionOwner(),
            "INSERT INTO config_guard.config_sources (config_id, position, source) "
            "SELECT $1, s.ord - 1, s.source FROM pg_catalog.unnest($2) WITH ORDINALITY AS s(source, ord)",
            2, source_types, source_values, nullptr, SPI_OK_INSERT);
  // At 0.1 there is no cache to invalidate: ALTER EXTENSION UPDATE adds the triggers.
  if (CacheInstalled()) {
    for (Oid relid : sources) InstallTriggers(DatumGetInt32(config_id), relid, tenant_column);
  }
  SPI_finish();

  InvalidateRegistry();
  PG_RETURN_VOID();
}

CG_FUNCTION(config_guard_undefine) {
  RequirePreloaded();
  if (PG_ARGISNULL(0)) ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("config must not be null")));
  char* name = text_to_cstring(PG_GETARG_TEXT_PP(0));
  ValidateConfigName(name);

  SPI_connect();
  Oid types[1] = {TEXTOID};
  Datum values[1] = {CStringGetTextDatum(name)};
  int rc = SPI_execute_with_args("SELECT owner::pg_catalog.oid, config_id FROM config_guard.configs WHERE name = $1", 1,
                                 types, values, nullptr, true, 1);
  if (rc != SPI_OK_SELECT) elog(ERROR, "registry lookup failed: %s", SPI_result_code_string(rc));
  if (SPI_processed == 0)
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("config \"%s\" does not exist", name)));
  bool isnull = false;
  const Oid owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
  const int32 config_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
  if (!has_privs_of_role(GetUserId(), owner))
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("must be owner of config \"%s\"", name)));

  Oid id_types[1] = {INT4OID};
  Datum id_values[1] = {Int32GetDatum(config_id)};
  rc = SPI_execute_with_args("SELECT source::pg_catalog.oid FROM config_guard.config_sources WHERE config_id = $1", 1,
                             id_types, id_values, nullptr, true, 0);
  if (rc != SPI_OK_SELECT) elog(ERROR, "registry lookup failed: %s", SPI_result_code_string(rc));
  SPITupleTable* source_rows = SPI_tuptable;
  const uint64 nsources = SPI_processed;
  for (uint64 i = 0; i < nsources; ++i)
    DropTriggers(config_id, DatumGetObjectId(SPI_getbinval(source_rows->vals[i], source_rows->tupdesc, 1, &isnull)));
  if (CacheInstalled()) ForgetConfig(config_id);

  ExecuteAs(ExtensionOwner(), "DELETE FROM config_guard.configs WHERE name = $1", 1, types, values, nullptr,
            SPI_OK_DELETE);
  SPI_finish();

  InvalidateRegistry();
  PG_RETURN_VOID();
}

}  // namespace config_guard

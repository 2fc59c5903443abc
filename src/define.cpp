// config_guard.define() and config_guard.undefine(): validate a config and
// write it to the registry tables.
//
// The registry tables are writable only by their owner; these functions check
// the caller's rights, then write through the gateway. A config is owned by
// its builder's owner, so it follows ALTER FUNCTION ... OWNER TO and
// REASSIGN OWNED; dependencies.cpp refuses the drops that would break it.
#include "module.hpp"
#include "pg_compat.hpp"
#include "pg_alloc.hpp"
#include "invalidation.hpp"
#include "builder_identity.hpp"
#include "gateway.hpp"
#include "registry.hpp"
#include "source_chain.hpp"
#include "source_shape.hpp"
#include "store.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "storage/lmgr.h"
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

// Appends the tables of `arr` (an argument called `what`) to `sources`,
// which holds those of earlier arguments: a table is listed once in all.
void AddSourceList(ArrayType* arr, const char* what, SmallVector<Oid, 8>* sources) {
  Datum* elems = nullptr;
  bool* nulls = nullptr;
  int n = 0;
  deconstruct_array(arr, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT, &elems, &nulls, &n);
  for (int i = 0; i < n; ++i) {
    if (nulls[i]) ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not contain null", what)));
    const Oid relid = DatumGetObjectId(elems[i]);
    for (Oid seen : *sources) {
      if (seen == relid)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("source %s is listed more than once", get_rel_name(relid))));
    }
    sources->push_back(relid);
  }
}

void RequireSourceOwner(Oid relid) {
  if (!compat::OwnsRelation(relid, GetUserId()))
    ereport(ERROR,
            (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
             errmsg("must be owner of table %s to use it as a config source",
                    quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid)))));
}

void CheckBuilder(Oid builder, Oid tenant_type) {
  // Held until commit: a concurrent DROP FUNCTION waits, then sees the config.
  LockDatabaseObject(ProcedureRelationId, builder, 0, AccessShareLock);
  HeapTuple tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(builder));
  if (!HeapTupleIsValid(tuple))
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_FUNCTION), errmsg("builder function %u does not exist", builder)));
  auto* proc = reinterpret_cast<Form_pg_proc>(GETSTRUCT(tuple));
  const bool temporary = isAnyTempNamespace(proc->pronamespace);
  const bool ok = proc->prokind == PROKIND_FUNCTION && proc->pronargs == 1 &&
                  proc->proargtypes.values[0] == tenant_type && proc->prorettype == JSONBOID && !proc->proretset;
  ReleaseSysCache(tuple);
  if (temporary)
    ereport(ERROR, (errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
                    errmsg("builder \"%s\" is a temporary function", get_func_name(builder)),
                    errdetail("A config outlives the session, so its builder must too.")));
  if (!ok)
    ereport(ERROR,
            (errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
             errmsg("builder %s must take one argument of type %s and return jsonb", format_procedure(builder),
                    format_type_be(tenant_type)),
             errhint("Declare it as CREATE FUNCTION ...(tenant %s) RETURNS jsonb.", format_type_be(tenant_type))));
  if (!compat::OwnsFunction(builder, GetUserId()))
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                    errmsg("must be owner of builder function %s to use it in a config", format_procedure(builder))));
}

}  // namespace

CG_FUNCTION(config_guard_define) {
  RequirePreloaded();
  for (int i = 0; i < 5; ++i) {
    if (PG_ARGISNULL(i))
      ereport(ERROR,
              (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("arguments of config_guard.define must not be null")));
  }
  char* name = text_to_cstring(PG_GETARG_TEXT_PP(0));
  const Oid builder = PG_GETARG_OID(1);
  SmallVector<Oid, 8> sources;
  AddSourceList(PG_GETARG_ARRAYTYPE_P(2), "sources", &sources);
  if (sources.empty())
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("sources must name at least one table")));
  const size_t ntenant = sources.size();
  AddSourceList(PG_GETARG_ARRAYTYPE_P(4), "shared_sources", &sources);
  const char* tenant_column = NameStr(*PG_GETARG_NAME(3));
  ValidateConfigName(name);
  RequireCurrentSchema();
  LockSignaturesForDefine();

  // Sources without the tenant column are children: each reaches it through
  // a foreign key to another source.
  SmallVector<Oid, 8> with_tenant;
  SmallVector<Oid, 8> children;
  Oid tenant_type = InvalidOid;
  for (size_t i = 0; i < sources.size(); ++i) {
    const Oid relid = sources[i];
    if (i >= ntenant || get_attnum(relid, tenant_column) == InvalidAttrNumber) {
      DescribeSharedSource(relid);
      RequireSourceOwner(relid);
      if (i < ntenant) children.push_back(relid);
      continue;
    }
    with_tenant.push_back(relid);
    SourceShape shape;
    DescribeSource(relid, tenant_column, &shape);
    RequireSourceOwner(relid);
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
  SmallVector<ChildLink, 8> links(children.size());
  if (with_tenant.empty() && !children.empty()) {
    // (no source has the column: say so about the first)
    SourceShape shape;
    DescribeSource(children[0], tenant_column, &shape);
  }
  ResolveChildren(with_tenant.data(), static_cast<int>(with_tenant.size()), children.data(),
                  static_cast<int>(children.size()), links.data(), tenant_column);
  // Exported as the others are: an index must serve its pages.
  for (Oid child : children) {
    SourceShape shape;
    DescribeChildSource(child, ChainOf(child, links.data(), static_cast<int>(links.size())), tenant_column, tenant_type,
                        &shape);
  }
  CheckBuilder(builder, tenant_type);

  // The foreign key of each child, by position among all sources.
  Datum* vias = static_cast<Datum*>(palloc0(sizeof(Datum) * sources.size()));
  bool* via_nulls = static_cast<bool*>(palloc(sizeof(bool) * sources.size()));
  for (size_t i = 0; i < sources.size(); ++i) {
    via_nulls[i] = true;
    for (const ChildLink& link : links) {
      if (link.child == sources[i]) {
        vias[i] = CStringGetTextDatum(link.name);
        via_nulls[i] = false;
      }
    }
  }
  int dims[1] = {static_cast<int>(sources.size())};
  int lbs[1] = {1};
  const Datum via_array =
      PointerGetDatum(construct_md_array(vias, via_nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));

  SPI_connect();
  Datum config_values[5] = {CStringGetTextDatum(name), ObjectIdGetDatum(builder), PG_GETARG_DATUM(3),
                            ObjectIdGetDatum(tenant_type), BuilderHome()};
  if (RunAsOwner(Stmt::kInsertConfig, config_values) == 0)
    ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT), errmsg("config \"%s\" already exists", name),
                    errhint("Undefine it first with config_guard.undefine('%s').", name)));
  bool isnull = false;
  const Datum config_id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

  Datum source_values[4] = {config_id, PG_GETARG_DATUM(2), PG_GETARG_DATUM(4), via_array};
  RunAsOwner(Stmt::kInsertSources, source_values);
  // A shared source's triggers name no tenant column: they mark every tenant.
  // A child's also name its foreign key.
  for (size_t i = 0; i < sources.size(); ++i)
    InstallTriggers(DatumGetInt32(config_id), sources[i], i < ntenant ? tenant_column : "", false,
                    via_nulls[i] ? nullptr : TextDatumGetCString(vias[i]));
  SPI_finish();

  InvalidateRegistry();
  PG_RETURN_VOID();
}

CG_FUNCTION(config_guard_undefine) {
  RequirePreloaded();
  if (PG_ARGISNULL(0)) ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("config must not be null")));
  char* name = text_to_cstring(PG_GETARG_TEXT_PP(0));
  ValidateConfigName(name);
  RequireCurrentSchema();

  // Not through AcquireConfig(): a config whose sources no longer validate
  // must still be removable.
  SPI_connect();
  Datum values[2] = {CStringGetTextDatum(name), BuilderHome()};
  if (RunAsOwner(Stmt::kFindConfig, values) == 0)
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("config \"%s\" does not exist", name)));
  SPITupleTable* found = SPI_tuptable;
  bool isnull = false;
  const int32 config_id = DatumGetInt32(SPI_getbinval(found->vals[0], found->tupdesc, 1, &isnull));
  const Oid builder = DatumGetObjectId(SPI_getbinval(found->vals[0], found->tupdesc, 2, &isnull));
  const Datum source_array = SPI_getbinval(found->vals[0], found->tupdesc, 4, &isnull);
  const bool has_sources = !isnull;
  // A config whose builder is gone (dropped with a temporary schema, or while
  // the library was not loaded) has no owner left: superusers remove it.
  const bool builder_exists = SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(builder));
  if (builder_exists ? !has_privs_of_role(GetUserId(), ConfigOwner(name, builder)) : !superuser())
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("must be owner of config \"%s\"", name)));

  if (has_sources) {
    Datum* elems = nullptr;
    int n = 0;
    deconstruct_array(DatumGetArrayTypeP(source_array), OIDOID, sizeof(Oid), true, TYPALIGN_INT, &elems, nullptr, &n);
    for (int i = 0; i < n; ++i) DropTriggers(config_id, DatumGetObjectId(elems[i]));
  }
  ForgetConfig(config_id);
  Datum id[1] = {Int32GetDatum(config_id)};
  RunAsOwner(Stmt::kDeleteConfig, id);
  SPI_finish();

  InvalidateRegistry();
  PG_RETURN_VOID();
}

}  // namespace config_guard

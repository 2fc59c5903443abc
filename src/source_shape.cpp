#include "source_shape.hpp"
#include "pg_compat.hpp"

#include "canonical_key.hpp"
#include "source_chain.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "access/table.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_class_d.h"
#include "commands/defrem.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
}

namespace config_guard {
namespace {

Oid ColumnCollation(Oid relid, AttrNumber att) {
  Oid type = InvalidOid;
  int32 typmod = 0;
  Oid collation = InvalidOid;
  get_atttypetypmodcoll(relid, att, &type, &typmod, &collation);
  return collation;
}

// Fills the keyset from the primary key, leaving the tenant column out: a
// primary key of (tenant_id, id) orders a tenant's rows by id alone.
// (A child source's keyset starts with the columns of its foreign key, which
// the caller has put there: the primary key adds the others.)
void KeysetFromPrimaryKey(Relation rel, SourceShape* shape) {
  const Oid pk_oid = compat::PrimaryKeyIndex(rel);
  if (!OidIsValid(pk_oid))
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("source table %s has no primary key", shape->qualified_name),
                    errdetail("config_guard orders and pages each tenant's rows by primary key."),
                    errhint("Add a primary key to the table.")));

  Relation pk = index_open(pk_oid, AccessShareLock);
  const int leading = shape->nkeys;
  for (int i = 0; i < pk->rd_index->indnkeyatts; ++i) {
    const AttrNumber att = pk->rd_index->indkey.values[i];
    if (att == shape->tenant_attnum) continue;
    bool listed = false;
    for (int k = 0; k < leading; ++k) listed |= shape->key_attnums[k] == att;
    if (listed) continue;
    const int k = shape->nkeys++;
    shape->key_attnums[k] = att;
    shape->key_types[k] = get_atttype(shape->relid, att);
    shape->key_names[k] = pstrdup(quote_identifier(get_attname(shape->relid, att, false)));
    RequireEqualImage(shape->key_types[k], ColumnCollation(shape->relid, att), get_attname(shape->relid, att, false),
                      shape->qualified_name);
  }
  index_close(pk, AccessShareLock);
}

// True if index column `col` of `index` stores heap column `att` in the
// default btree order of its type, ascending, under the column's collation:
// the order ORDER BY uses.
bool ColumnServesOrder(Relation index, int col, Oid relid, AttrNumber att) {
  if (index->rd_index->indkey.values[col] != att) return false;
  const Oid type = get_atttype(relid, att);
  const Oid collation = ColumnCollation(relid, att);
  const Oid opclass = GetDefaultOpClass(type, BTREE_AM_OID);
  if (!OidIsValid(opclass) || get_opclass_family(opclass) != index->rd_opfamily[col]) return false;
  if (index->rd_indoption[col] != 0) return false;  // DESC or NULLS FIRST
  return index->rd_indcollation[col] == collation;
}

// The columns an export page seeks and orders by: the tenant column and the
// keyset, or a child's keyset alone (it starts with its foreign key).
int OrderColumns(const SourceShape& shape, AttrNumber* columns) {
  int n = 0;
  if (!shape.child) columns[n++] = shape.tenant_attnum;
  for (int k = 0; k < shape.nkeys; ++k) columns[n++] = shape.key_attnums[k];
  return n;
}

bool IndexServesKeyset(Oid index_oid, const SourceShape& shape) {
  AttrNumber columns[INDEX_MAX_KEYS + 1];
  const int n = OrderColumns(shape, columns);
  Relation index = index_open(index_oid, AccessShareLock);
  bool ok = index->rd_rel->relam == BTREE_AM_OID && index->rd_index->indisvalid && index->rd_index->indnkeyatts >= n &&
            // Partial or not, read from the catalog row: RelationGetIndexPredicate()
            // would fold the predicate, running any immutable function in it.
            heap_attisnull(index->rd_indextuple, Anum_pg_index_indpred, nullptr);
  for (int i = 0; ok && i < n; ++i) ok = ColumnServesOrder(index, i, shape.relid, columns[i]);
  index_close(index, AccessShareLock);
  return ok;
}

void RequireSupportingIndex(Relation rel, const SourceShape& shape) {
  ListCell* lc;
  foreach (lc, RelationGetIndexList(rel)) {
    if (IndexServesKeyset(lfirst_oid(lc), shape)) return;
  }
  AttrNumber order[INDEX_MAX_KEYS + 1];
  const int n = OrderColumns(shape, order);
  StringInfoData columns;
  initStringInfo(&columns);
  for (int i = 0; i < n; ++i)
    appendStringInfo(&columns, "%s%s", i > 0 ? ", " : "", quote_identifier(get_attname(shape.relid, order[i], false)));
  ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                  errmsg("source table %s has no index supporting keyset export", shape.qualified_name),
                  errdetail(shape.child ? "Each export page of a child source must be one index seek on its foreign "
                                          "key's columns followed by the other primary-key columns."
                                        : "Each export page must be one index seek on the tenant column followed by "
                                          "the primary-key columns."),
                  errhint("Create it with: CREATE INDEX ON %s (%s);", shape.qualified_name, columns.data)));
}

}  // namespace

namespace {

// What every source, shared or not, must be: a table whose every change an
// invalidation trigger sees.
void CheckSourceTable(Relation rel, const char* qualified_name) {
  const Oid relid = RelationGetRelid(rel);
  const char kind = rel->rd_rel->relkind;
  if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
    ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("source %s is not a table", qualified_name),
                    errdetail("Sources must be ordinary or partitioned tables.")));
  if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
    ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                    errmsg("source \"%s\" is a temporary table", RelationGetRelationName(rel)),
                    errdetail("A config outlives the session, so its sources must too.")));
  // Crash recovery empties an unlogged table without firing a trigger, and a
  // standby never has its rows: the documents would outlive their data.
  if (rel->rd_rel->relpersistence == RELPERSISTENCE_UNLOGGED)
    ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("source %s is an unlogged table", qualified_name),
                    errdetail("A crash empties it without invalidating the documents built from it."),
                    errhint("ALTER TABLE %s SET LOGGED;", qualified_name)));

  // A statement on the parent fires the parent's statement triggers, not
  // those of the partition or child it writes into.
  if (has_superclass(relid))
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("source %s is a partition or an inheritance child", qualified_name),
                    errdetail("Writes through its parent would not invalidate the config's documents."),
                    errhint("Define the topmost parent as the source: its partitions and children are covered.")));
}

}  // namespace

void DescribeSharedSource(Oid relid) {
  Relation rel = table_open(relid, AccessShareLock);
  CheckSourceTable(
      rel, quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)), RelationGetRelationName(rel)));
  table_close(rel, AccessShareLock);
}

void DescribeSource(Oid relid, const char* tenant_column, SourceShape* shape) {
  Relation rel = table_open(relid, AccessShareLock);
  shape->relid = relid;
  shape->qualified_name =
      quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)), RelationGetRelationName(rel));
  CheckSourceTable(rel, shape->qualified_name);

  shape->tenant_attnum = get_attnum(relid, tenant_column);
  if (shape->tenant_attnum == InvalidAttrNumber || shape->tenant_attnum < 0)
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                    errmsg("source table %s has no tenant column \"%s\"", shape->qualified_name, tenant_column),
                    errhint("Pass the tenant column's name as tenant_column, or add the column.")));
  shape->tenant_type = get_atttype(relid, shape->tenant_attnum);
  RequireEqualImage(shape->tenant_type, ColumnCollation(relid, shape->tenant_attnum), tenant_column,
                    shape->qualified_name);

  shape->child = false;
  shape->tenant_joins = "";
  shape->tenant_expr = psprintf("s.%s", quote_identifier(tenant_column));
  shape->nkeys = 0;
  KeysetFromPrimaryKey(rel, shape);
  RequireSupportingIndex(rel, *shape);
  table_close(rel, AccessShareLock);
}

void DescribeChildSource(Oid relid, List* chain, const char* tenant_column, Oid tenant_type, SourceShape* shape) {
  Relation rel = table_open(relid, AccessShareLock);
  shape->relid = relid;
  shape->qualified_name =
      quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)), RelationGetRelationName(rel));
  CheckSourceTable(rel, shape->qualified_name);
  const ChainPath path = BuildChainPath(chain, tenant_column);
  shape->child = true;
  shape->tenant_joins = path.joins;
  shape->tenant_expr = path.tenant;
  shape->tenant_attnum = InvalidAttrNumber;
  shape->tenant_type = tenant_type;
  // The keyset: the foreign key's columns (a tenant's rows are those of its
  // parents, which the index finds together), then the primary key's others.
  shape->nkeys = 0;
  for (int k = 0; k < path.nkeys; ++k) {
    const AttrNumber att = path.child_keys[k];
    shape->key_attnums[k] = att;
    shape->key_types[k] = get_atttype(relid, att);
    shape->key_names[k] = pstrdup(quote_identifier(get_attname(relid, att, false)));
    RequireEqualImage(shape->key_types[k], ColumnCollation(relid, att), get_attname(relid, att, false),
                      shape->qualified_name);
    shape->nkeys = k + 1;
  }
  KeysetFromPrimaryKey(rel, shape);
  RequireSupportingIndex(rel, *shape);
  table_close(rel, AccessShareLock);
}

}  // namespace config_guard

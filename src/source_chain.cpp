#include "source_chain.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_operator.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
#include "access/table.h"
}

namespace config_guard {
namespace {

const char* QualifiedTable(Oid relid) {
  return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
}

bool Contains(const Oid* list, int n, Oid relid) {
  for (int i = 0; i < n; ++i) {
    if (list[i] == relid) return true;
  }
  return false;
}

// OPERATOR(schema.name): the foreign key's own equality operator, whatever
// the search_path.
const char* QualifiedOperator(Oid op) {
  HeapTuple tuple = SearchSysCache1(OPEROID, ObjectIdGetDatum(op));
  if (!HeapTupleIsValid(tuple)) elog(ERROR, "cache lookup failed for operator %u", op);
  auto* form = reinterpret_cast<Form_pg_operator>(GETSTRUCT(tuple));
  const char* text =
      psprintf("OPERATOR(%s.%s)", quote_identifier(get_namespace_name(form->oprnamespace)), NameStr(form->oprname));
  ReleaseSysCache(tuple);
  return text;
}

struct ForeignKey {
  Oid child;
  Oid parent;
  int nkeys;
  AttrNumber child_keys[INDEX_MAX_KEYS];
  AttrNumber parent_keys[INDEX_MAX_KEYS];
  Oid equality[INDEX_MAX_KEYS];  // parent key = child key
};

bool ReadForeignKey(Oid constraint, ForeignKey* fk) {
  HeapTuple tuple = SearchSysCache1(CONSTROID, ObjectIdGetDatum(constraint));
  if (!HeapTupleIsValid(tuple)) return false;
  auto* form = reinterpret_cast<Form_pg_constraint>(GETSTRUCT(tuple));
  const bool ok = form->contype == CONSTRAINT_FOREIGN;
  if (ok) {
    fk->child = form->conrelid;
    fk->parent = form->confrelid;
    DeconstructFkConstraintRow(tuple, &fk->nkeys, fk->child_keys, fk->parent_keys, fk->equality, nullptr, nullptr,
                               nullptr, nullptr);
  }
  ReleaseSysCache(tuple);
  return ok;
}

}  // namespace

void ResolveChildren(const Oid* with_tenant, int ntenant, const Oid* children, int nchildren, ChildLink* links,
                     const char* tenant_column) {
  // Resolved so far: the sources with the tenant column, then children as
  // they find a parent, level by level (nearest chains first).
  Oid* resolved = static_cast<Oid*>(palloc(sizeof(Oid) * (ntenant + nchildren)));
  int nresolved = ntenant;
  memcpy(resolved, with_tenant, sizeof(Oid) * ntenant);
  bool* done = static_cast<bool*>(palloc0(sizeof(bool) * nchildren));
  for (bool progress = true; progress;) {
    progress = false;
    const int level_end = nresolved;  // parents of this level: those resolved before it
    for (int i = 0; i < nchildren; ++i) {
      if (done[i]) continue;
      Relation rel = table_open(children[i], AccessShareLock);
      List* fkeys = RelationGetFKeyList(rel);
      ChildLink best = {};
      ListCell* lc;
      foreach (lc, fkeys) {
        const auto* info = static_cast<ForeignKeyCacheInfo*>(lfirst(lc));
        if (info->confrelid == children[i] || !Contains(resolved, level_end, info->confrelid)) continue;
        const char* name = get_constraint_name(info->conoid);
        if (OidIsValid(best.constraint) && strcmp(name, best.name) >= 0) continue;
        best = {children[i], info->confrelid, info->conoid, {}};
        strlcpy(best.name, name, NAMEDATALEN);
      }
      table_close(rel, AccessShareLock);
      if (!OidIsValid(best.constraint)) continue;
      links[i] = best;
      done[i] = true;
      resolved[nresolved++] = children[i];
      progress = true;
      ereport(NOTICE, (errmsg("source %s reaches its tenant through foreign key %s to %s", QualifiedTable(best.child),
                              quote_identifier(best.name), QualifiedTable(best.parent))));
    }
  }
  for (int i = 0; i < nchildren; ++i) {
    if (done[i]) continue;
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                    errmsg("source table %s has no tenant column \"%s\" and no foreign key to another source",
                           QualifiedTable(children[i]), tenant_column),
                    errdetail("A source without the tenant column reaches its tenant through a foreign key to a source "
                              "that has it, or to another source that does."),
                    errhint("Pass the tenant column's name as tenant_column, add the table its foreign key "
                            "references to the sources, or add the column.")));
  }
}

char* ChainLookupSql(List* chain, const char* tenant_column, bool with_new, bool with_old) {
  StringInfoData columns;
  StringInfoData joins;
  StringInfoData locks;
  initStringInfo(&columns);
  initStringInfo(&joins);
  initStringInfo(&locks);
  Oid top = InvalidOid;
  int level = 0;
  ListCell* lc;
  foreach (lc, chain) {
    ForeignKey fk;
    if (!ReadForeignKey(lfirst_oid(lc), &fk)) return nullptr;
    if (level > 0 && fk.child != top) return nullptr;  // the chain no longer links up
    ++level;
    appendStringInfo(&joins, " JOIN %s AS p%d ON ", QualifiedTable(fk.parent), level);
    for (int k = 0; k < fk.nkeys; ++k) {
      const char* child_column = quote_identifier(get_attname(fk.child, fk.child_keys[k], false));
      // The first link reads the changed rows; the next ones, the parent row
      // of the link before.
      if (level == 1) appendStringInfo(&columns, "%s%s", k > 0 ? ", " : "", child_column);
      appendStringInfo(&joins, "%sp%d.%s %s %s.%s", k > 0 ? " AND " : "", level,
                       quote_identifier(get_attname(fk.parent, fk.parent_keys[k], false)),
                       QualifiedOperator(fk.equality[k]), level == 1 ? "c" : psprintf("p%d", level - 1), child_column);
    }
    appendStringInfo(&locks, "%sp%d", level > 1 ? ", " : "", level);
    top = fk.parent;
  }
  if (level == 0 || get_attnum(top, tenant_column) == InvalidAttrNumber) return nullptr;

  StringInfoData sql;
  initStringInfo(&sql);
  appendStringInfo(&sql, "SELECT p%d.%s FROM (", level, quote_identifier(tenant_column));
  if (with_new) appendStringInfo(&sql, "SELECT %s FROM config_guard_new", columns.data);
  if (with_new && with_old) appendStringInfoString(&sql, " UNION ALL ");
  if (with_old) appendStringInfo(&sql, "SELECT %s FROM config_guard_old", columns.data);
  appendStringInfo(&sql, ") AS c%s FOR SHARE OF %s", joins.data, locks.data);
  return sql.data;
}

}  // namespace config_guard

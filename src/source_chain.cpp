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
#include "access/genam.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "nodes/bitmapset.h"
#include "parser/parse_type.h"
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

// Whether `columns` of `relid` all belong to a unique index a foreign key
// could reference (no expressions, no predicate): changing any of them is a
// key update, which waits for FOR KEY SHARE locks on the row.
bool InUniqueKey(Oid relid, const AttrNumber* columns, int n) {
  Relation rel = table_open(relid, AccessShareLock);
  Bitmapset* key = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_KEY);
  table_close(rel, AccessShareLock);
  for (int i = 0; i < n; ++i) {
    if (!bms_is_member(columns[i] - FirstLowInvalidHeapAttributeNumber, key)) return false;
  }
  return true;
}

// The columns that tie a parent to its tenant: the tenant column of a source
// that has it, else its own foreign key to its parent (`up`).
int UpColumns(Oid parent, const char* tenant_column, Oid up, AttrNumber* columns) {
  if (!OidIsValid(up)) {
    columns[0] = get_attnum(parent, tenant_column);
    return columns[0] == InvalidAttrNumber ? 0 : 1;
  }
  ForeignKey fk;
  if (!ReadForeignKey(up, &fk)) return 0;
  memcpy(columns, fk.child_keys, sizeof(AttrNumber) * fk.nkeys);
  return fk.nkeys;
}

// "a, b, id": the columns, then the primary key's other columns.
const char* UniqueIndexColumns(Oid relid, const AttrNumber* columns, int n) {
  StringInfoData text;
  initStringInfo(&text);
  Bitmapset* listed = nullptr;
  for (int i = 0; i < n; ++i) {
    appendStringInfo(&text, "%s%s", i > 0 ? ", " : "", quote_identifier(get_attname(relid, columns[i], false)));
    listed = bms_add_member(listed, columns[i]);
  }
  Relation rel = table_open(relid, AccessShareLock);
  const Oid pk = RelationGetPrimaryKeyIndex(rel);
  table_close(rel, AccessShareLock);
  if (OidIsValid(pk)) {
    Relation index = index_open(pk, AccessShareLock);
    for (int i = 0; i < index->rd_index->indnkeyatts; ++i) {
      const AttrNumber att = index->rd_index->indkey.values[i];
      if (bms_is_member(att, listed)) continue;
      appendStringInfo(&text, ", %s", quote_identifier(get_attname(relid, att, false)));
    }
    index_close(index, AccessShareLock);
  }
  return text.data;
}

// A type named so that no search_path changes what it means.
const char* QualifiedType(Oid type) { return format_type_extended(type, -1, FORMAT_TYPE_FORCE_QUALIFY); }

// `expression` cast to the operator's input type, as a foreign key check
// writes it, so that no other operator of that name can match better.
const char* AsInput(const char* expression, Oid input) {
  if (IsPolymorphicType(input)) return expression;
  return psprintf("%s::%s", expression, QualifiedType(input));
}

// A child with foreign keys to two sources (or two to one) could belong to
// a tenant through either: refused rather than followed one way.
void RequireSingleWay(const ChildLink& link, const Oid* sources, int nsources) {
  Relation rel = table_open(link.child, AccessShareLock);
  List* fkeys = RelationGetFKeyList(rel);
  table_close(rel, AccessShareLock);
  ListCell* lc;
  foreach (lc, fkeys) {
    const auto* info = static_cast<ForeignKeyCacheInfo*>(lfirst(lc));
    if (info->conoid == link.constraint || info->confrelid == link.child ||
        !Contains(sources, nsources, info->confrelid))
      continue;
    ereport(ERROR,
            (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
             errmsg("child source %s has foreign keys to two sources", QualifiedTable(link.child)),
             errdetail("Foreign key %s references %s and foreign key %s references %s: its rows could belong to a "
                       "tenant through either.",
                       quote_identifier(link.name), QualifiedTable(link.parent),
                       quote_identifier(get_constraint_name(info->conoid)), QualifiedTable(info->confrelid)),
             errhint("Declare it a shared source instead, or give it the tenant column.")));
  }
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
    if (done[i]) {
      RequireSingleWay(links[i], resolved, nresolved);
      continue;
    }
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                    errmsg("source table %s has no tenant column \"%s\" and no foreign key to another source",
                           QualifiedTable(children[i]), tenant_column),
                    errdetail("A source without the tenant column reaches its tenant through a foreign key to a source "
                              "that has it, or to another source that does."),
                    errhint("Pass the tenant column's name as tenant_column, add the table its foreign key "
                            "references to the sources, or add the column.")));
  }
  // Every parent must make its move to another tenant wait for its
  // children's lookups (source_chain.hpp).
  for (int i = 0; i < nchildren; ++i) {
    Oid up = InvalidOid;
    for (int j = 0; j < nchildren; ++j) {
      if (links[j].child == links[i].parent) up = links[j].constraint;
    }
    AttrNumber columns[INDEX_MAX_KEYS];
    const int n = UpColumns(links[i].parent, tenant_column, up, columns);
    if (InUniqueKey(links[i].parent, columns, n)) continue;
    const char* index_columns = UniqueIndexColumns(links[i].parent, columns, n);
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("source %s, parent of child source %s, has no unique index on (%s)",
                           QualifiedTable(links[i].parent), QualifiedTable(links[i].child), index_columns),
                    errdetail("A write to the child locks its parent row as a foreign key check does; only a "
                              "unique index with the column that ties the parent to its tenant makes a move of the "
                              "parent to another tenant wait for that lock."),
                    errhint("Create it with: CREATE UNIQUE INDEX ON %s (%s);", QualifiedTable(links[i].parent),
                            index_columns)));
  }
}

namespace {

// " JOIN parent AS p1 ON p1.key = <child>.fk ... JOIN ... AS pN ...": the
// chain's parents joined to the rows of `child_alias`, with each foreign
// key's own equality operator and its operands cast to its input types (as
// a foreign key check writes them, so that no other operator of that name
// can match better). Sets `broken` if the chain cannot be followed.
struct ChainJoins {
  StringInfoData joins;
  StringInfoData locks;  // "p1, p2 ..."
  int levels = 0;
  Oid first_parent = InvalidOid;
  int nkeys = 0;  // the first link's columns in the child
  AttrNumber child_keys[INDEX_MAX_KEYS];
  AttrNumber parent_keys[INDEX_MAX_KEYS];
  const char* broken = nullptr;
};

// (`lookup`: for the trigger's lookup, which relies on each parent's unique
// key for its locking; an export page only joins.)
void BuildChainJoins(List* chain, const char* tenant_column, const char* child_alias, bool lookup, ChainJoins* out) {
  initStringInfo(&out->joins);
  initStringInfo(&out->locks);
  Oid top = InvalidOid;
  ListCell* lc;
  foreach (lc, chain) {
    ForeignKey fk;
    if (!ReadForeignKey(lfirst_oid(lc), &fk) || (out->levels > 0 && fk.child != top)) {
      out->broken = "a foreign key of its chain is gone";
      return;
    }
    // The parent's tie to its tenant must be a unique key (source_chain.hpp).
    AttrNumber up[INDEX_MAX_KEYS];
    const ListCell* next = lnext(chain, lc);
    const int nup = UpColumns(fk.parent, tenant_column, next != nullptr ? lfirst_oid(next) : InvalidOid, up);
    if (nup == 0 || (lookup && !InUniqueKey(fk.parent, up, nup))) {
      out->broken =
          psprintf("table %s has no unique index on the column that ties it to its tenant", QualifiedTable(fk.parent));
      return;
    }
    const int level = ++out->levels;
    if (level == 1) {
      out->first_parent = fk.parent;
      out->nkeys = fk.nkeys;
      memcpy(out->child_keys, fk.child_keys, sizeof(AttrNumber) * fk.nkeys);
      memcpy(out->parent_keys, fk.parent_keys, sizeof(AttrNumber) * fk.nkeys);
    }
    appendStringInfo(&out->joins, " JOIN %s AS p%d ON ", QualifiedTable(fk.parent), level);
    for (int k = 0; k < fk.nkeys; ++k) {
      HeapTuple op = SearchSysCache1(OPEROID, ObjectIdGetDatum(fk.equality[k]));
      if (!HeapTupleIsValid(op)) elog(ERROR, "cache lookup failed for operator %u", fk.equality[k]);
      auto* form = reinterpret_cast<Form_pg_operator>(GETSTRUCT(op));
      const Oid left = form->oprleft;
      const Oid right = form->oprright;
      ReleaseSysCache(op);
      appendStringInfo(
          &out->joins, "%s%s %s %s", k > 0 ? " AND " : "",
          AsInput(psprintf("p%d.%s", level, quote_identifier(get_attname(fk.parent, fk.parent_keys[k], false))), left),
          QualifiedOperator(fk.equality[k]),
          AsInput(psprintf("%s.%s", level == 1 ? child_alias : psprintf("p%d", level - 1),
                           quote_identifier(get_attname(fk.child, fk.child_keys[k], false))),
                  right));
    }
    appendStringInfo(&out->locks, "%sp%d", level > 1 ? ", " : "", level);
    top = fk.parent;
  }
  if (out->levels == 0) out->broken = "its chain of foreign keys is empty";
}

}  // namespace

ChainLookup BuildChainLookup(List* chain, const char* tenant_column, bool with_new, bool with_old) {
  ChainLookup lookup = {};
  ChainJoins chain_joins;
  BuildChainJoins(chain, tenant_column, "c", true, &chain_joins);
  if ((lookup.broken = chain_joins.broken) != nullptr) return lookup;
  // The first link's columns, from the changed rows of the child (a
  // partition's columns have the child source's names).
  StringInfoData columns;
  StringInfoData not_null;
  initStringInfo(&columns);
  initStringInfo(&not_null);
  ForeignKey first;
  ReadForeignKey(linitial_oid(chain), &first);
  for (int k = 0; k < first.nkeys; ++k) {
    const char* column = quote_identifier(get_attname(first.child, first.child_keys[k], false));
    appendStringInfo(&columns, "%s, ", column);
    appendStringInfo(&not_null, " AND %s IS NOT NULL", column);
  }

  StringInfoData sql;
  initStringInfo(&sql);
  appendStringInfo(&sql, "SELECT p%d.%s, c.config_guard_new_row FROM (", chain_joins.levels,
                   quote_identifier(tenant_column));
  if (with_new) appendStringInfo(&sql, "SELECT %strue AS config_guard_new_row FROM config_guard_new", columns.data);
  if (with_new && with_old) appendStringInfoString(&sql, " UNION ALL ");
  if (with_old) appendStringInfo(&sql, "SELECT %sfalse AS config_guard_new_row FROM config_guard_old", columns.data);
  appendStringInfo(&sql, ") AS c%s FOR KEY SHARE OF %s", chain_joins.joins.data, chain_joins.locks.data);
  lookup.found_sql = sql.data;
  if (with_new)
    lookup.expected_sql = psprintf("SELECT pg_catalog.count(*) FROM config_guard_new WHERE true%s", not_null.data);
  return lookup;
}

ChainPath BuildChainPath(List* chain, const char* tenant_column) {
  ChainPath path = {};
  ChainJoins chain_joins;
  BuildChainJoins(chain, tenant_column, "s", false, &chain_joins);
  if (chain_joins.broken != nullptr)
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("a child source's way to its tenant cannot be followed: %s", chain_joins.broken),
                    errhint("Undefine the config and define it again.")));
  path.joins = chain_joins.joins.data;
  path.tenant = psprintf("p%d.%s", chain_joins.levels, quote_identifier(tenant_column));
  path.nkeys = chain_joins.nkeys;
  memcpy(path.child_keys, chain_joins.child_keys, sizeof(AttrNumber) * chain_joins.nkeys);
  path.first_parent = chain_joins.first_parent;
  memcpy(path.parent_keys, chain_joins.parent_keys, sizeof(AttrNumber) * chain_joins.nkeys);
  return path;
}

List* ChainOf(Oid child, const ChildLink* links, int nlinks) {
  List* chain = NIL;
  for (Oid at = child; list_length(chain) <= nlinks;) {
    const ChildLink* link = nullptr;
    for (int i = 0; i < nlinks; ++i) {
      if (links[i].child == at) link = &links[i];
    }
    if (link == nullptr) break;
    chain = lappend_oid(chain, link->constraint);
    at = link->parent;
  }
  return chain;
}

}  // namespace config_guard

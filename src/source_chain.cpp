#include "source_chain.hpp"
#include "pg_compat.hpp"

#include "identity.hpp"

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
#include "catalog/pg_class.h"
#include "access/genam.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "nodes/bitmapset.h"
#include "parser/parse_type.h"
#include "catalog/pg_collation.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "commands/trigger.h"
#include "utils/datum.h"
#include "utils/tuplestore.h"
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
  const Oid pk = compat::PrimaryKeyIndex(rel);
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

const char* CollateClause(Oid relid, AttrNumber att) {
  Oid type = InvalidOid;
  int32 typmod = 0;
  Oid collation = InvalidOid;
  get_atttypetypmodcoll(relid, att, &type, &typmod, &collation);
  if (!OidIsValid(collation)) return "";
  HeapTuple tuple = SearchSysCache1(COLLOID, ObjectIdGetDatum(collation));
  if (!HeapTupleIsValid(tuple)) elog(ERROR, "cache lookup failed for collation %u", collation);
  auto* form = reinterpret_cast<Form_pg_collation>(GETSTRUCT(tuple));
  const char* clause = psprintf(
      " COLLATE %s", quote_qualified_identifier(get_namespace_name(form->collnamespace), NameStr(form->collname)));
  ReleaseSysCache(tuple);
  return clause;
}

// Column k of a foreign key compared as its check compares it: the parent's
// key and the child's column cast to the key's equality operator's input
// types, under the parent column's collation.
const char* KeyEquality(const ForeignKey& fk, int k, const char* parent_alias, const char* child_expr) {
  HeapTuple op = SearchSysCache1(OPEROID, ObjectIdGetDatum(fk.equality[k]));
  if (!HeapTupleIsValid(op)) elog(ERROR, "cache lookup failed for operator %u", fk.equality[k]);
  auto* form = reinterpret_cast<Form_pg_operator>(GETSTRUCT(op));
  const Oid left = form->oprleft;
  const Oid right = form->oprright;
  ReleaseSysCache(op);
  return psprintf(
      "%s %s (%s)%s",
      AsInput(psprintf("%s.%s", parent_alias, quote_identifier(get_attname(fk.parent, fk.parent_keys[k], false))),
              left),
      QualifiedOperator(fk.equality[k]), AsInput(child_expr, right), CollateClause(fk.parent, fk.parent_keys[k]));
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

// The owner of a table (the role a foreign key check of it runs as).
Oid TableOwner(Oid relid) {
  HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
  if (!HeapTupleIsValid(tuple)) return InvalidOid;
  const Oid owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple))->relowner;
  ReleaseSysCache(tuple);
  return owner;
}

// One link of a chain as the lookup walks it: the parent table, the columns
// of the rows below that reference it, and the columns it passes up (its own
// foreign key to the next parent, or the tenant column at the top).
struct Level {
  Oid parent;
  int nkeys;
  const char* child_names[INDEX_MAX_KEYS];
  Oid child_types[INDEX_MAX_KEYS];
  const char* join;  // "p.key::T OPERATOR(...) (u.k1::T) COLLATE ... AND ..."
  int nup;
  const char* up_names[INDEX_MAX_KEYS];
};

// The levels of `chain`, or nullptr with `*broken` set.
Level* ReadLevels(List* chain, const char* tenant_column, Oid below, int* nlevels, const char** broken) {
  Level* levels = static_cast<Level*>(palloc0(sizeof(Level) * list_length(chain)));
  int n = 0;
  Oid top = InvalidOid;
  ListCell* lc;
  foreach (lc, chain) {
    ForeignKey fk;
    if (!ReadForeignKey(lfirst_oid(lc), &fk) || (n > 0 && fk.child != top)) {
      *broken = "a foreign key of its chain is gone";
      return nullptr;
    }
    AttrNumber up[INDEX_MAX_KEYS];
    const ListCell* next = lnext(chain, lc);
    const int nup = UpColumns(fk.parent, tenant_column, next != nullptr ? lfirst_oid(next) : InvalidOid, up);
    if (nup == 0 || !InUniqueKey(fk.parent, up, nup)) {
      *broken =
          psprintf("table %s has no unique index on the column that ties it to its tenant", QualifiedTable(fk.parent));
      return nullptr;
    }
    Level* level = &levels[n++];
    level->parent = fk.parent;
    level->nkeys = fk.nkeys;
    StringInfoData join;
    initStringInfo(&join);
    for (int k = 0; k < fk.nkeys; ++k) {
      // The rows below are the statement's (a partition's columns have the
      // child source's names) or the parents found one level down.
      const char* name = get_attname(fk.child, fk.child_keys[k], false);
      level->child_names[k] = pstrdup(name);
      level->child_types[k] =
          get_atttype(n == 1 ? below : fk.child, n == 1 ? get_attnum(below, name) : fk.child_keys[k]);
      appendStringInfo(&join, "%s%s", k > 0 ? " AND " : "", KeyEquality(fk, k, "p", psprintf("u.k%d", k + 1)));
    }
    level->join = join.data;
    level->nup = nup;
    for (int k = 0; k < nup; ++k) level->up_names[k] = pstrdup(get_attname(fk.parent, up[k], false));
    top = fk.parent;
  }
  if (n == 0) {
    *broken = "its chain of foreign keys is empty";
    return nullptr;
  }
  *nlevels = n;
  return levels;
}

// The keys of a level's rows below, column by column.
struct Keys {
  int count = 0;
  int capacity = 0;
  Datum* columns[INDEX_MAX_KEYS] = {};
};

void AddKey(Keys* keys, int ncolumns, const Datum* values) {
  if (keys->count == keys->capacity) {
    keys->capacity = keys->capacity == 0 ? 16 : keys->capacity * 2;
    for (int c = 0; c < ncolumns; ++c) {
      keys->columns[c] = keys->columns[c] == nullptr
                             ? static_cast<Datum*>(palloc(sizeof(Datum) * keys->capacity))
                             : static_cast<Datum*>(repalloc(keys->columns[c], sizeof(Datum) * keys->capacity));
    }
  }
  for (int c = 0; c < ncolumns; ++c) keys->columns[c][keys->count] = values[c];
  ++keys->count;
}

// The keys of the rows of a transition table that reference a parent (none
// of their columns NULL).
void KeysOfRows(Tuplestorestate* store, Relation rel, const Level& level, Keys* keys) {
  if (store == nullptr) return;
  TupleDesc desc = RelationGetDescr(rel);
  AttrNumber atts[INDEX_MAX_KEYS];
  for (int k = 0; k < level.nkeys; ++k) atts[k] = get_attnum(RelationGetRelid(rel), level.child_names[k]);
  const int pointer = tuplestore_alloc_read_pointer(store, EXEC_FLAG_REWIND);
  tuplestore_select_read_pointer(store, pointer);
  tuplestore_rescan(store);
  TupleTableSlot* slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
  while (tuplestore_gettupleslot(store, true, false, slot)) {
    CHECK_FOR_INTERRUPTS();
    Datum values[INDEX_MAX_KEYS];
    bool complete = true;
    for (int k = 0; k < level.nkeys && complete; ++k) {
      bool isnull = false;
      const Datum value = slot_getattr(slot, atts[k], &isnull);
      const Form_pg_attribute attr = TupleDescAttr(desc, atts[k] - 1);
      complete = !isnull;
      if (complete) values[k] = datumCopy(value, attr->attbyval, attr->attlen);
    }
    if (complete) AddKey(keys, level.nkeys, values);
  }
  ExecDropSingleTupleTableSlot(slot);
  tuplestore_select_read_pointer(store, 0);
}

// One level: locks the parents of `below` FOR KEY SHARE, as the foreign key
// check does, as the parent table's owner, and returns the keys they pass up
// (`above`). False if one of `below` has no parent.
bool WalkLevel(const Level& level, const Keys& below, Keys* above, Oid* up_types) {
  StringInfoData sql;
  initStringInfo(&sql);
  appendStringInfoString(&sql, "SELECT u.config_guard_row");
  for (int k = 0; k < level.nup; ++k) appendStringInfo(&sql, ", p.%s", quote_identifier(level.up_names[k]));
  appendStringInfoString(&sql, " FROM ROWS FROM (");
  for (int k = 0; k < level.nkeys; ++k) appendStringInfo(&sql, "%spg_catalog.unnest($%d)", k > 0 ? ", " : "", k + 1);
  appendStringInfoString(&sql, ") WITH ORDINALITY AS u(");
  for (int k = 0; k < level.nkeys; ++k) appendStringInfo(&sql, "k%d, ", k + 1);
  // (ONLY for a plain table, as a foreign key check reads it)
  appendStringInfo(&sql, "config_guard_row) JOIN %s%s AS p ON %s FOR KEY SHARE OF p",
                   get_rel_relkind(level.parent) == RELKIND_RELATION ? "ONLY " : "", QualifiedTable(level.parent),
                   level.join);
  Oid types[INDEX_MAX_KEYS];
  Datum args[INDEX_MAX_KEYS];
  for (int k = 0; k < level.nkeys; ++k) {
    const Oid element = level.child_types[k];
    types[k] = get_array_type(element);
    if (!OidIsValid(types[k])) elog(ERROR, "type %s has no array type", format_type_be(element));
    int16 len = 0;
    bool byval = false;
    char align = 0;
    get_typlenbyvalalign(element, &len, &byval, &align);
    args[k] = PointerGetDatum(construct_array(below.columns[k], below.count, element, len, byval, align));
  }
  IdentityScope scope = IdentityScope::AsTableOwner(TableOwner(level.parent));
  const int rc = SPI_execute_with_args(sql.data, level.nkeys, types, args, nullptr, false, 0);
  scope.Leave();
  if (rc != SPI_OK_SELECT) elog(ERROR, "config_guard child source lookup failed: %s", SPI_result_code_string(rc));
  bool* found = static_cast<bool*>(palloc0(sizeof(bool) * below.count));
  for (int k = 0; k < level.nup; ++k) up_types[k] = SPI_gettypeid(SPI_tuptable->tupdesc, 2 + k);
  for (uint64 i = 0; i < SPI_processed; ++i) {
    bool isnull = false;
    const int64 row = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
    if (row >= 1 && row <= below.count) found[row - 1] = true;
    Datum values[INDEX_MAX_KEYS];
    bool complete = true;
    for (int k = 0; k < level.nup && complete; ++k) {
      const Datum value = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2 + k, &isnull);
      const Form_pg_attribute attr = TupleDescAttr(SPI_tuptable->tupdesc, 1 + k);
      complete = !isnull;
      if (complete) values[k] = datumCopy(value, attr->attbyval, attr->attlen);
    }
    // (A parent whose own key is NULL belongs to no tenant.)
    if (complete) AddKey(above, level.nup, values);
  }
  SPI_freetuptable(SPI_tuptable);
  for (int i = 0; i < below.count; ++i) {
    if (!found[i]) return false;
  }
  return true;
}

}  // namespace

bool FindChildTenants(const TriggerData* data, List* chain, const char* tenant_column,
                      void (*add)(void* arg, Datum tenant, Oid type), void* arg, const char** broken) {
  int nlevels = 0;
  const Level* levels = ReadLevels(chain, tenant_column, RelationGetRelid(data->tg_relation), &nlevels, broken);
  if (levels == nullptr) return false;
  bool complete = true;
  // New rows first (each must find its whole chain), then old ones (whose
  // parent may have gone with this very transaction, which marked its tenant
  // when it went).
  for (int side = 0; side < 2; ++side) {
    Tuplestorestate* store = side == 0 ? data->tg_newtable : data->tg_oldtable;
    if (store == nullptr) continue;
    Keys keys;
    KeysOfRows(store, data->tg_relation, levels[0], &keys);
    for (int l = 0; l < nlevels && keys.count > 0; ++l) {
      Keys above;
      Oid up_types[INDEX_MAX_KEYS];
      if (!WalkLevel(levels[l], keys, &above, up_types) && side == 0) complete = false;
      if (l == nlevels - 1) {
        for (int i = 0; i < above.count; ++i) add(arg, above.columns[0][i], up_types[0]);
      }
      keys = above;
    }
  }
  return complete;
}

// The chain's parents joined to a child's rows (alias s), each with its
// foreign key's own equality operator and casts (KeyEquality).
ChainPath BuildChainPath(List* chain, const char* tenant_column) {
  ChainPath path = {};
  StringInfoData joins;
  initStringInfo(&joins);
  Oid top = InvalidOid;
  int level = 0;
  ListCell* lc;
  foreach (lc, chain) {
    ForeignKey fk;
    if (!ReadForeignKey(lfirst_oid(lc), &fk) || (level > 0 && fk.child != top))
      ereport(ERROR,
              (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
               errmsg("a child source's way to its tenant cannot be followed: a foreign key of its chain is gone"),
               errhint("Undefine the config and define it again.")));
    ++level;
    if (level == 1) {
      path.nkeys = fk.nkeys;
      memcpy(path.child_keys, fk.child_keys, sizeof(AttrNumber) * fk.nkeys);
    }
    appendStringInfo(&joins, " JOIN %s AS p%d ON ", QualifiedTable(fk.parent), level);
    for (int k = 0; k < fk.nkeys; ++k) {
      appendStringInfo(&joins, "%s%s", k > 0 ? " AND " : "",
                       KeyEquality(fk, k, psprintf("p%d", level),
                                   psprintf("%s.%s", level == 1 ? "s" : psprintf("p%d", level - 1),
                                            quote_identifier(get_attname(fk.child, fk.child_keys[k], false)))));
    }
    top = fk.parent;
  }
  if (level == 0)
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("a child source's way to its tenant cannot be followed: its chain is empty"),
                    errhint("Undefine the config and define it again.")));
  path.joins = joins.data;
  path.tenant = psprintf("p%d.%s", level, quote_identifier(tenant_column));
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

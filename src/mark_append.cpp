// Appending invalidation marks (see mark_append.hpp).
#include "mark_append.hpp"

#include "pg_compat.hpp"

#include "mark_skip.hpp"

#include <algorithm>
#include "registry.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "catalog/index.h"
#include "catalog/pg_index.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type_d.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"
}

namespace config_guard {
namespace {

// Whether the transaction already holds the mark: the unique index
// (config_id, tenant, xid) NULLS NOT DISTINCT, probed with the transaction's
// own view (SnapshotSelf: its rows, also those of the current command, less
// those it deleted), which is what the index's uniqueness check looks at.
bool AlreadyMarked(Relation heap, Relation index, int32 config_id, Datum tenant, bool tenant_null,
                   FullTransactionId xid) {
  ScanKeyData keys[3];
  ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(config_id));
  if (tenant_null) {
    ScanKeyEntryInitialize(&keys[1], SK_ISNULL | SK_SEARCHNULL, 2, InvalidStrategy, InvalidOid, InvalidOid, InvalidOid,
                           static_cast<Datum>(0));
  } else {
    ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_TEXTEQ, tenant);
    keys[1].sk_collation = index->rd_indcollation[1];
  }
  ScanKeyInit(&keys[2], 3, BTEqualStrategyNumber, F_XID8EQ, FullTransactionIdGetDatum(xid));
  IndexScanDesc scan = compat::BeginIndexScan(heap, index, SnapshotSelf, 3);
  index_rescan(scan, keys, 3, nullptr, 0);
  TupleTableSlot* slot = table_slot_create(heap, nullptr);
  const bool found = index_getnext_slot(scan, ForwardScanDirection, slot);
  ExecDropSingleTupleTableSlot(slot);
  index_endscan(scan);
  return found;
}

// Sets of (config, tenant) keys of the current transaction, in
// TopTransactionContext: the first few in an array (most write transactions
// touch a tenant or two), a hash past them.
struct WrittenKey {
  int32 config_id;
  const char* tenant;  // nullptr: every tenant
};
struct Written {
  WrittenKey key;
  // (pending marks) the subtransaction whose build stored the tenant's
  // document since the write, folding it: 0 if none did.
  SubTransactionId folded_in;
  // (pending marks) the subtransaction that wrote it before the commit,
  // for a reader of the generation: 0 if none did.
  SubTransactionId flushed_in;
};
constexpr long kMaxRemembered = 10000;

uint32 HashWritten(const void* key, Size) {
  const auto* k = static_cast<const WrittenKey*>(key);
  const uint32 h = hash_bytes_uint32(static_cast<uint32>(k->config_id));
  if (k->tenant == nullptr) return h;
  return hash_combine(h, hash_bytes(reinterpret_cast<const unsigned char*>(k->tenant), strlen(k->tenant)));
}

int MatchWritten(const void* a, const void* b, Size) {
  const auto* x = static_cast<const WrittenKey*>(a);
  const auto* y = static_cast<const WrittenKey*>(b);
  if (x->config_id != y->config_id) return 1;
  if (x->tenant == nullptr || y->tenant == nullptr) return x->tenant == y->tenant ? 0 : 1;
  return strcmp(x->tenant, y->tenant);
}

class KeySet {
 public:
  void Reset() {
    hash_ = nullptr;  // (the memory goes with TopTransactionContext)
    inline_count_ = 0;
  }
  long size() const { return inline_count_ + (hash_ != nullptr ? hash_get_num_entries(hash_) : 0); }
  bool Contains(const WrittenKey& key) { return Find(key) != nullptr; }
  Written* Find(const WrittenKey& key) {
    for (int i = 0; i < inline_count_; ++i) {
      if (MatchWritten(&inline_[i].key, &key, sizeof key) == 0) return &inline_[i];
    }
    return hash_ != nullptr ? static_cast<Written*>(hash_search(hash_, &key, HASH_FIND, nullptr)) : nullptr;
  }
  // Enters a copy of the key (not already in the set).
  void Add(WrittenKey key) {
    key.tenant = key.tenant == nullptr ? nullptr : MemoryContextStrdup(TopTransactionContext, key.tenant);
    if (inline_count_ < kInline) {
      inline_[inline_count_++] = {key, InvalidSubTransactionId, InvalidSubTransactionId};
      return;
    }
    if (hash_ == nullptr) {
      HASHCTL ctl = {};
      ctl.keysize = sizeof(WrittenKey);
      ctl.entrysize = sizeof(Written);
      ctl.hash = HashWritten;
      ctl.match = MatchWritten;
      ctl.hcxt = TopTransactionContext;
      hash_ = hash_create("config_guard marks of the transaction", 64, &ctl,
                          HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
    }
    auto* entry = static_cast<Written*>(hash_search(hash_, &key, HASH_ENTER, nullptr));
    entry->folded_in = InvalidSubTransactionId;
    entry->flushed_in = InvalidSubTransactionId;
  }
  // Calls fn(Written*) on each entry.
  template <typename Fn>
  void ForEach(Fn fn) {
    for (int i = 0; i < inline_count_; ++i) fn(&inline_[i]);
    if (hash_ != nullptr) {
      HASH_SEQ_STATUS status;
      hash_seq_init(&status, hash_);
      while (auto* entry = static_cast<Written*>(hash_seq_search(&status))) fn(entry);
    }
  }

 private:
  static constexpr int kInline = 8;
  HTAB* hash_ = nullptr;
  Written inline_[kInline];
  int inline_count_ = 0;
};

// The marks this backend wrote in the current transaction. Every mark of a
// transaction is written here (the transaction id is its own), so a mark not
// in the set is known absent and needs no probe; one in the set is probed (a
// rebuild may have folded it, or a subtransaction abort removed it). Beyond
// kMaxRemembered marks the set stops growing and every mark is probed.
KeySet written;
bool written_complete = true;
// The marks of the triggers, written when the transaction commits (or
// prepares) unless another covers them then (mark_skip.hpp). Past
// kMaxRemembered tenants, marks are written as the triggers ask.
KeySet pending;
TransactionId written_xid = InvalidTransactionId;
// Only with the transaction callback, registered when the library is
// preloaded: otherwise every mark is written as the trigger asks.
bool defer_to_commit = false;
// From PRE_COMMIT (or PRE_PREPARE) on, the deferred marks are written: a
// trigger fired later (another extension's callback) writes its own at once.
bool committing = false;

void StartWritten(TransactionId xid) {
  written.Reset();
  pending.Reset();
  written_complete = true;
  written_xid = xid;
}

// Whether the mark may exist already (it must be probed); remembers it.
bool MayBeWritten(int32 config_id, const char* tenant, TransactionId xid) {
  if (written_xid != xid) StartWritten(xid);
  WrittenKey key = {config_id, tenant};
  if (written.Contains(key)) return true;
  if (written.size() >= kMaxRemembered) {
    written_complete = false;
    return true;
  }
  written.Add(key);
  return !written_complete;
}

// Whether the trigger's mark of the tenant waits for the commit (entered in
// `pending`, or there already).
bool Defer(int32 config_id, const char* tenant, TransactionId xid) {
  if (committing) return false;
  if (written_xid != xid) StartWritten(xid);
  const WrittenKey key = {config_id, tenant};
  if (Written* w = pending.Find(key)) {
    // Written after a store that folded it: due again, even if it was
    // written once for a reader of the generation (the store folded that
    // row too). Written for such a reader and not folded since: the row
    // stands for this write too.
    if (w->folded_in != InvalidSubTransactionId) {
      w->folded_in = InvalidSubTransactionId;
      w->flushed_in = InvalidSubTransactionId;
    }
    return true;
  }
  if (pending.size() >= kMaxRemembered) return false;
  pending.Add(key);
  return true;
}

void FlushPending(bool may_skip);

// A subtransaction's rollback undoes the stores made in it and in those
// started after it (their ids are larger): the marks they folded are due again.
void AtSubTransactionAbort(SubXactEvent event, SubTransactionId subxact, SubTransactionId, void*) {
  if (event != SUBXACT_EVENT_ABORT_SUB) return;
  pending.ForEach([subxact](Written* w) {
    if (w->folded_in >= subxact) w->folded_in = InvalidSubTransactionId;
    if (w->flushed_in >= subxact) w->flushed_in = InvalidSubTransactionId;
  });
}

void AtTransactionEnd(XactEvent event, void*) {
  if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PRE_PREPARE) {
    committing = true;
    FlushPending(event == XACT_EVENT_PRE_COMMIT);
    return;
  }
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE ||
      event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT) {
    committing = false;
    StartWritten(InvalidTransactionId);
  }
}

// The table's columns by name, in case it ever gains or drops one.
struct Columns {
  Oid relid = InvalidOid;
  AttrNumber config_id, tenant, xid, at, weight;  // weight: 0.5 on (InvalidAttrNumber before)
  int nindexes;  // (an index built or dropped invalidates the relcache entry: read again)
};
Columns columns;

const Columns& ColumnsOf(Relation rel) {
  if (columns.relid != RelationGetRelid(rel)) {
    const Oid relid = RelationGetRelid(rel);
    columns = {relid,
               get_attnum(relid, "config_id"),
               get_attnum(relid, "tenant"),
               get_attnum(relid, "xid"),
               get_attnum(relid, "at"),
               get_attnum(relid, "weight")};
    int live = 0;
    for (int a = 0; a < RelationGetDescr(rel)->natts; ++a) {
      if (!TupleDescAttr(RelationGetDescr(rel), a)->attisdropped) ++live;
    }
    // (A column added by a later version would need its default here.)
    if (columns.config_id == InvalidAttrNumber || columns.tenant == InvalidAttrNumber ||
        columns.xid == InvalidAttrNumber || columns.at == InvalidAttrNumber ||
        live != (columns.weight == InvalidAttrNumber ? 4 : 5)) {
      columns.relid = InvalidOid;
      elog(ERROR, "config_guard.invalidations does not have the columns this library writes");
    }
    columns.nindexes = list_length(RelationGetIndexList(rel));
  }
  return columns;
}

// The two indexes of the marks, written directly (no executor state, no
// predicate to evaluate): the unique key (config_id, tenant, xid) NULLS NOT
// DISTINCT, and (config_id) of the config-wide marks only (WHERE tenant IS
// NULL). Their descriptions are built once per index and kept.
struct MarkIndex {
  Oid oid = InvalidOid;
  IndexInfo* info = nullptr;  // in TopMemoryContext
};
MarkIndex key_index_info;
MarkIndex wide_index_info;

IndexInfo* InfoOf(Relation index, MarkIndex* cached, const Columns& cols, bool key) {
  if (cached->oid == RelationGetRelid(index)) return cached->info;
  const int2vector& attrs = index->rd_index->indkey;
  const bool shaped = key ? index->rd_index->indnkeyatts == 3 && index->rd_index->indisunique &&
                                attrs.values[0] == cols.config_id && attrs.values[1] == cols.tenant &&
                                attrs.values[2] == cols.xid
                          : index->rd_index->indnkeyatts == 1 && attrs.values[0] == cols.config_id &&
                                !heap_attisnull(index->rd_indextuple, Anum_pg_index_indpred, nullptr);
  if (!shaped)
    elog(ERROR, "index %s of config_guard.invalidations is not the one this library writes",
         RelationGetRelationName(index));
  MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
  IndexInfo* info = BuildIndexInfo(index);
  MemoryContextSwitchTo(old);
  if (cached->info != nullptr) pfree(cached->info);
  *cached = {RelationGetRelid(index), info};
  return info;
}

// The table's layout and its indexes change with ALTER EXTENSION ... UPDATE,
// ALTER TABLE or REINDEX: what was read of them is read again.
void ForgetLayout(Datum, Oid) {
  columns.relid = InvalidOid;
  key_index_info.oid = InvalidOid;
  wide_index_info.oid = InvalidOid;
}

}  // namespace

void InitMarkAppend() {
  defer_to_commit = true;
  RegisterXactCallback(AtTransactionEnd, nullptr);
  RegisterSubXactCallback(AtSubTransactionAbort, nullptr);
  CacheRegisterRelcacheCallback(ForgetLayout, 0);
}

namespace {

// Any other index (one REINDEX CONCURRENTLY is building, or left invalid):
// the executor inserts into every index the table has.
void InsertWithExecutor(Relation rel, TupleTableSlot* slot) {
  EState* estate = CreateExecutorState();
  ResultRelInfo* result = makeNode(ResultRelInfo);
  InitResultRelInfo(result, rel, 1, nullptr, 0);
  ExecOpenIndices(result, false);
  compat::InsertIndexTuples(result, slot, estate);
  ExecCloseIndices(result);
  FreeExecutorState(estate);
}

}  // namespace

void FoldPendingMark(int32 config_id, const char* tenant) {
  const TransactionId xid = GetTopTransactionIdIfAny();
  if (!TransactionIdIsValid(xid) || written_xid != xid) return;
  Written* w = pending.Find({config_id, tenant});
  if (w != nullptr && w->folded_in == InvalidSubTransactionId) w->folded_in = GetCurrentSubTransactionId();
}

bool MarkPending(int32 config_id, const char* tenant) {
  const TransactionId xid = GetTopTransactionIdIfAny();
  if (!TransactionIdIsValid(xid) || written_xid != xid) return false;
  const Written* w = pending.Find({config_id, tenant});
  return w != nullptr && w->folded_in == InvalidSubTransactionId && w->flushed_in == InvalidSubTransactionId;
}

bool TransactionMayHaveMarked(int32 config_id, const char* tenant) {
  const TransactionId xid = GetTopTransactionIdIfAny();
  if (!TransactionIdIsValid(xid) || written_xid != xid) return false;
  if (!written_complete) return true;
  return written.Contains({config_id, tenant}) || written.Contains({config_id, nullptr}) ||
         pending.Contains({config_id, tenant});
}

namespace {

enum class Write { kAtCommit, kNow };

void AppendMarks(int32 config_id, const char* const* tenants, int n, Write when) {
  if (n == 0) return;
  const FullTransactionId xid = GetTopFullTransactionId();

  // A tenant's mark waits for the commit, without opening the table: by
  // then another may cover it (mark_skip.hpp). Config-wide marks, marks
  // past kMaxRemembered tenants and those asked for by invalidate() are
  // written now. `probe`: the transaction may hold the mark already.
  const char** names = nullptr;
  bool* probe = nullptr;
  int remaining = 0;
  for (int i = 0; i < n; ++i) {
    if (when == Write::kAtCommit && defer_to_commit && tenants[i] != nullptr &&
        Defer(config_id, tenants[i], XidFromFullTransactionId(xid)))
      continue;
    if (names == nullptr) {
      names = static_cast<const char**>(palloc(sizeof(char*) * (n - i)));
      probe = static_cast<bool*>(palloc(sizeof(bool) * (n - i)));
    }
    names[remaining] = tenants[i];
    probe[remaining] = MayBeWritten(config_id, tenants[i], XidFromFullTransactionId(xid));
    ++remaining;
  }
  if (remaining == 0) return;

  const CacheRelations tables = CacheTables();
  Relation rel = table_open(tables.invalidations, RowExclusiveLock);
  Relation key_index = index_open(tables.invalidations_key, RowExclusiveLock);
  Relation wide_index = index_open(tables.invalidations_config_wide, RowExclusiveLock);
  const Columns& cols = ColumnsOf(rel);
  // Only these two indexes are written directly; with any other the
  // executor writes them all.
  const bool direct = cols.nindexes == 2;
  IndexInfo* key_info = InfoOf(key_index, &key_index_info, cols, true);
  IndexInfo* wide_info = InfoOf(wide_index, &wide_index_info, cols, false);
  const TimestampTz at = GetCurrentTransactionStartTimestamp();

  TupleTableSlot* slot = table_slot_create(rel, nullptr);
  const CommandId cid = GetCurrentCommandId(true);

  for (int i = 0; i < remaining; ++i) {
    CHECK_FOR_INTERRUPTS();
    const char* tenant = names[i];
    const bool null = tenant == nullptr;
    const Datum value = null ? static_cast<Datum>(0) : CStringGetTextDatum(tenant);
    if (probe[i] && AlreadyMarked(rel, key_index, config_id, value, null, xid)) continue;
    ExecClearTuple(slot);
    for (int a = 0; a < slot->tts_tupleDescriptor->natts; ++a) slot->tts_isnull[a] = true;
    slot->tts_values[cols.config_id - 1] = Int32GetDatum(config_id);
    slot->tts_isnull[cols.config_id - 1] = false;
    slot->tts_values[cols.tenant - 1] = value;
    slot->tts_isnull[cols.tenant - 1] = null;
    slot->tts_values[cols.xid - 1] = FullTransactionIdGetDatum(xid);
    slot->tts_isnull[cols.xid - 1] = false;
    slot->tts_values[cols.at - 1] = TimestampTzGetDatum(at);
    slot->tts_isnull[cols.at - 1] = false;
    if (cols.weight != InvalidAttrNumber) {
      slot->tts_values[cols.weight - 1] = Int64GetDatum(1);
      slot->tts_isnull[cols.weight - 1] = false;
    }
    ExecStoreVirtualTuple(slot);
    table_tuple_insert(rel, slot, cid, 0, nullptr);
    if (tenant != nullptr) NoteDurableMark(config_id, tenant);
    if (!direct) {
      InsertWithExecutor(rel, slot);
      continue;
    }
    // No uniqueness check in the index: the key holds this transaction's own
    // id, which no other backend writes marks under, and the lines above
    // have already made sure this transaction holds no live mark of it.
    // Checked, a unique insertion starts at the first leaf of the (config,
    // tenant) prefix and steps right across every mark of the tenant, dead
    // ones included; unchecked, it descends straight to its place, as the
    // newest xid of the prefix.
    Datum key_values[3] = {Int32GetDatum(config_id), value, FullTransactionIdGetDatum(xid)};
    bool key_nulls[3] = {false, null, false};
    index_insert(key_index, key_values, key_nulls, &slot->tts_tid, rel, UNIQUE_CHECK_NO, false, key_info);
    if (null) index_insert(wide_index, key_values, key_nulls, &slot->tts_tid, rel, UNIQUE_CHECK_NO, false, wide_info);
  }

  ExecDropSingleTupleTableSlot(slot);
  index_close(wide_index, NoLock);
  index_close(key_index, NoLock);
  table_close(rel, NoLock);
}

// The deferred marks, at PRE_COMMIT (`may_skip`) or PRE_PREPARE: each one
// that nothing covers now is written, grouped by config.
void FlushPending(bool may_skip) {
  const TransactionId xid = GetTopTransactionIdIfAny();
  if (pending.size() == 0 || !TransactionIdIsValid(xid) || written_xid != xid) return;
  // DROP EXTENSION in this transaction took the table (and the triggers)
  // with it: nothing left to mark.
  if (!CacheTablesPresent()) return;
  // (Those a build of this transaction folded are in its document.)
  auto* keys = static_cast<WrittenKey*>(palloc(sizeof(WrittenKey) * pending.size()));
  long n = 0;
  pending.ForEach([&](Written* w) {
    if (w->folded_in == InvalidSubTransactionId && w->flushed_in == InvalidSubTransactionId) keys[n++] = w->key;
  });
  pending.Reset();  // (written from here on as the triggers' are past the limit)
  std::sort(keys, keys + n, [](const WrittenKey& a, const WrittenKey& b) { return a.config_id < b.config_id; });
  const char** due = static_cast<const char**>(palloc(sizeof(char*) * n));
  for (long start = 0; start < n;) {
    const int32 config_id = keys[start].config_id;
    int count = 0;
    long end = start;
    for (; end < n && keys[end].config_id == config_id; ++end) {
      if (may_skip && TrySkipMark(config_id, keys[end].tenant)) continue;
      due[count++] = keys[end].tenant;
    }
    AppendMarks(config_id, due, count, Write::kNow);
    start = end;
  }
}

}  // namespace

void AppendMarkRows(int32 config_id, const char* const* tenants, int n) {
  AppendMarks(config_id, tenants, n, Write::kAtCommit);
}

void AppendMarkRowsNow(int32 config_id, const char* const* tenants, int n) {
  AppendMarks(config_id, tenants, n, Write::kNow);
}

bool WritePendingMark(int32 config_id, const char* tenant) {
  if (!MarkPending(config_id, tenant)) return false;
  AppendMarks(config_id, &tenant, 1, Write::kNow);
  pending.Find({config_id, tenant})->flushed_in = GetCurrentSubTransactionId();
  return true;
}

}  // namespace config_guard

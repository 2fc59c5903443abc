// Appending invalidation marks (see mark_append.hpp).
#include "mark_append.hpp"

#include "registry.hpp"

extern "C" {
#include "access/genam.h"
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
  IndexScanDesc scan = index_beginscan(heap, index, SnapshotSelf, 3, 0);
  index_rescan(scan, keys, 3, nullptr, 0);
  TupleTableSlot* slot = table_slot_create(heap, nullptr);
  const bool found = index_getnext_slot(scan, ForwardScanDirection, slot);
  ExecDropSingleTupleTableSlot(slot);
  index_endscan(scan);
  return found;
}

// The marks this backend wrote in the current transaction. Every mark of a
// transaction is written here (the transaction id is its own), so a mark not
// in the set is known absent and needs no probe; one in the set is probed (a
// rebuild may have folded it, or a subtransaction abort removed it). Beyond
// kMaxRemembered marks the set stops growing and every mark is probed.
struct WrittenKey {
  int32 config_id;
  const char* tenant;  // nullptr: every tenant
};
struct Written {
  WrittenKey key;
};
constexpr long kMaxRemembered = 10000;
HTAB* written = nullptr;  // in TopTransactionContext
bool written_complete = true;
TransactionId written_xid = InvalidTransactionId;

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

// Whether the mark may exist already (it must be probed); remembers it.
bool MayBeWritten(int32 config_id, const char* tenant, TransactionId xid) {
  if (written == nullptr || written_xid != xid) {
    HASHCTL ctl = {};
    ctl.keysize = sizeof(WrittenKey);
    ctl.entrysize = sizeof(Written);
    ctl.hash = HashWritten;
    ctl.match = MatchWritten;
    ctl.hcxt = TopTransactionContext;
    written =
        hash_create("config_guard marks written", 64, &ctl, HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
    written_complete = true;
    written_xid = xid;
  }
  WrittenKey key = {config_id, tenant};
  if (hash_search(written, &key, HASH_FIND, nullptr) != nullptr) return true;
  if (hash_get_num_entries(written) >= kMaxRemembered) {
    written_complete = false;
    return true;
  }
  key.tenant = tenant == nullptr ? nullptr : MemoryContextStrdup(TopTransactionContext, tenant);
  hash_search(written, &key, HASH_ENTER, nullptr);
  return !written_complete;
}

void ForgetWritten(XactEvent event, void*) {
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE ||
      event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
    written = nullptr;  // (freed with TopTransactionContext)
}

// The table's columns by name, in case it ever gains or drops one.
struct Columns {
  Oid relid = InvalidOid;
  AttrNumber config_id, tenant, xid, at;
};
Columns columns;

const Columns& ColumnsOf(Relation rel) {
  if (columns.relid != RelationGetRelid(rel)) {
    const Oid relid = RelationGetRelid(rel);
    columns = {relid, get_attnum(relid, "config_id"), get_attnum(relid, "tenant"), get_attnum(relid, "xid"),
               get_attnum(relid, "at")};
    int live = 0;
    for (int a = 0; a < RelationGetDescr(rel)->natts; ++a) {
      if (!TupleDescAttr(RelationGetDescr(rel), a)->attisdropped) ++live;
    }
    // (A column added by a later version would need its default here.)
    if (columns.config_id == InvalidAttrNumber || columns.tenant == InvalidAttrNumber ||
        columns.xid == InvalidAttrNumber || columns.at == InvalidAttrNumber || live != 4) {
      columns.relid = InvalidOid;
      elog(ERROR, "config_guard.invalidations does not have the four columns this library writes");
    }
  }
  return columns;
}

}  // namespace

void InitMarkAppend() { RegisterXactCallback(ForgetWritten, nullptr); }

void AppendMarkRows(int32 config_id, ArrayType* tenants) {
  Datum* values = nullptr;
  bool* nulls = nullptr;
  int n = 0;
  deconstruct_array(tenants, TEXTOID, -1, false, TYPALIGN_INT, &values, &nulls, &n);
  if (n == 0) return;

  const CacheRelations tables = CacheTables();
  Relation rel = table_open(tables.invalidations, RowExclusiveLock);
  Relation key_index = index_open(tables.invalidations_key, RowExclusiveLock);
  const Columns& cols = ColumnsOf(rel);
  const FullTransactionId xid = GetTopFullTransactionId();
  const TimestampTz at = GetCurrentTransactionStartTimestamp();

  EState* estate = CreateExecutorState();
  ResultRelInfo* result = makeNode(ResultRelInfo);
  InitResultRelInfo(result, rel, 1, nullptr, 0);
  ExecOpenIndices(result, false);
  TupleTableSlot* slot = table_slot_create(rel, nullptr);
  const CommandId cid = GetCurrentCommandId(true);

  for (int i = 0; i < n; ++i) {
    CHECK_FOR_INTERRUPTS();
    const char* tenant = nulls[i] ? nullptr : TextDatumGetCString(values[i]);
    if (MayBeWritten(config_id, tenant, XidFromFullTransactionId(xid)) &&
        AlreadyMarked(rel, key_index, config_id, values[i], nulls[i], xid))
      continue;
    ExecClearTuple(slot);
    for (int a = 0; a < slot->tts_tupleDescriptor->natts; ++a) slot->tts_isnull[a] = true;
    slot->tts_values[cols.config_id - 1] = Int32GetDatum(config_id);
    slot->tts_isnull[cols.config_id - 1] = false;
    slot->tts_values[cols.tenant - 1] = values[i];
    slot->tts_isnull[cols.tenant - 1] = nulls[i];
    slot->tts_values[cols.xid - 1] = FullTransactionIdGetDatum(xid);
    slot->tts_isnull[cols.xid - 1] = false;
    slot->tts_values[cols.at - 1] = TimestampTzGetDatum(at);
    slot->tts_isnull[cols.at - 1] = false;
    ExecStoreVirtualTuple(slot);
    table_tuple_insert(rel, slot, cid, 0, nullptr);
    ExecInsertIndexTuples(result, slot, estate, false, false, nullptr, NIL);
    ResetPerTupleExprContext(estate);
  }

  ExecDropSingleTupleTableSlot(slot);
  ExecCloseIndices(result);
  FreeExecutorState(estate);
  index_close(key_index, NoLock);
  table_close(rel, NoLock);
}

}  // namespace config_guard

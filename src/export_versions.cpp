#include "export_versions.hpp"
#include "mark_skip.hpp"

#include "pg_compat.hpp"

#include "coalesce.hpp"
#include "export_query.hpp"
#include "gateway.hpp"
#include "gucs.hpp"
#include "identity.hpp"
#include "mark_append.hpp"
#include "store.hpp"

extern "C" {
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type_d.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}

namespace config_guard {
namespace {

// Rows read from a source's cursor at a time while a version is made: the
// backend holds one batch, whatever the tenant's size.
constexpr long kFetchBatch = 1000;

// The outermost (sub)transaction level holding a version this transaction
// made (0: none): it holds the tenant's export lock to the end of the top
// transaction, which PREPARE TRANSACTION would carry past the session (every
// other walk of the tenant would wait for COMMIT PREPARED). A subtransaction
// that aborts takes its versions and locks with it.
int made_version_level = 0;

void RefusePrepare(XactEvent event, void*) {
  if (event == XACT_EVENT_PRE_PREPARE && made_version_level > 0)
    ereport(ERROR,
            (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("cannot PREPARE a transaction that made an export version"),
             errhint("Walk exports in transactions of their own.")));
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE ||
      event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
    made_version_level = 0;
}

void FollowSubtransactions(SubXactEvent event, SubTransactionId, SubTransactionId, void*) {
  const int level = GetCurrentTransactionNestLevel();
  if (made_version_level < level) return;
  if (event == SUBXACT_EVENT_ABORT_SUB)
    made_version_level = 0;
  else if (event == SUBXACT_EVENT_COMMIT_SUB)
    made_version_level = level - 1;
}

// Whether this transaction wrote marks of the tenant or the whole config: its
// writes (or DDL) are not committed, so no version it made could be shared.
bool WroteOwnMarks(const ConfigDef& def, const TenantKey& tenant) {
  return TransactionMayHaveMarked(def.config_id, tenant.text);
}

[[noreturn]] void RefuseVersion(const ConfigDef& def, const TenantKey& tenant, int64 version) {
  ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                  errmsg("export version %lld of tenant %s in config \"%s\" is gone", static_cast<long long>(version),
                         tenant.display, def.name),
                  errdetail("A newer version replaced it more than config_guard.export_version_ttl (%d s) ago.",
                            export_version_ttl_s),
                  errhint("Restart the export from the first page, with after => NULL.")));
}

// Appends rows to config_guard.export_rows, as an INSERT would (every index
// of the table written), without a statement per row.
class RowWriter {
 public:
  explicit RowWriter(int64 version) : version_(version) {
    Oid relid = get_relname_relid("export_rows", RegistryNamespace());
    rel_ = table_open(relid, RowExclusiveLock);
    estate_ = CreateExecutorState();
    result_ = makeNode(ResultRelInfo);
    InitResultRelInfo(result_, rel_, 1, nullptr, 0);
    ExecOpenIndices(result_, false);
    slot_ = table_slot_create(rel_, nullptr);
    cid_ = GetCurrentCommandId(true);
  }

  void Append(int64 seq, int source, Datum item) {
    ExecClearTuple(slot_);
    Datum* values = slot_->tts_values;
    bool* nulls = slot_->tts_isnull;
    values[0] = Int64GetDatum(version_);
    values[1] = Int64GetDatum(seq);
    values[2] = Int16GetDatum(static_cast<int16>(source));
    values[3] = item;
    nulls[0] = nulls[1] = nulls[2] = nulls[3] = false;
    ExecStoreVirtualTuple(slot_);
    table_tuple_insert(rel_, slot_, cid_, 0, nullptr);
    compat::InsertIndexTuples(result_, slot_, estate_);
    ResetPerTupleExprContext(estate_);
  }

  void Close() {
    ExecDropSingleTupleTableSlot(slot_);
    ExecCloseIndices(result_);
    FreeExecutorState(estate_);
    table_close(rel_, NoLock);
  }

 private:
  int64 version_;
  Relation rel_;
  EState* estate_;
  ResultRelInfo* result_;
  TupleTableSlot* slot_;
  CommandId cid_;
};

// The tenant's current version if its generation under `snapshot` is still
// the one the version was read at; 0 if there is none.
int64 FreshVersion(const ConfigDef& def, const TenantKey& tenant, Snapshot snapshot) {
  PushActiveSnapshot(snapshot);
  Datum args[2] = {Int32GetDatum(def.config_id), CStringGetTextDatum(tenant.text)};
  int64 version = 0;
  if (RunAsOwner(Stmt::kExportVersionCurrent, args) > 0) {
    bool isnull = false;
    const int64 found = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    const int64 generation = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
    if (TenantGeneration(def, tenant.text) == generation) version = found;
  }
  PopActiveSnapshot();
  return version;
}

// Reads every row of the tenant's sources under one snapshot and stores them
// as a new version, which supersedes the tenant's current one. As the
// config's owner, the way its builder reads them, under the same pinned
// settings: every reader of the version gets the same rows and the same text.
int64 Materialize(ConfigDef* def, const TenantKey& tenant) {
  const TimestampTz start = GetCurrentTimestamp();
  // Before the snapshot: a covered write (which moves no generation) is in
  // the version or moves the generation after it (mark_skip.hpp).
  if (!FenceSkippers(def->config_id, tenant.text)) return 0;
  RunAsOwner(Stmt::kExportVersionId, nullptr);
  bool isnull = false;
  const int64 version = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

  CommandCounterIncrement();
  PushActiveSnapshot(GetTransactionSnapshot());
  // The generation under the snapshot the rows are read under: a write
  // committed after it moves the generation, and the version is stale.
  const int64 generation = TenantGeneration(*def, tenant.text);
  RowWriter writer(version);
  MemoryContext row_cxt =
      AllocSetContextCreate(CurrentMemoryContext, "config_guard export version row", ALLOCSET_DEFAULT_SIZES);
  int64 seq = 0;
  for (int s = 0; s < def->nsources; ++s) {
    SourceDef* src = &def->sources[s];
    Datum args[2] = {tenant.value, Int64GetDatum(PG_INT64_MAX)};
    IdentityScope scope(def->owner, true);
    scope.Pin("search_path", kSafeSearchPath);
    scope.PinDeterministicOutput();
    Portal portal = SPI_cursor_open(nullptr, PagePlan(*def, src, false), args, nullptr, true);
    for (;;) {
      SPI_cursor_fetch(portal, true, kFetchBatch);
      if (SPI_processed == 0) break;
      SPITupleTable* rows = SPI_tuptable;
      for (uint64 i = 0; i < SPI_processed; ++i) {
        CHECK_FOR_INTERRUPTS();
        MemoryContext old = MemoryContextSwitchTo(row_cxt);
        const Datum item = FunctionCall1(&src->row_to_jsonb, SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull));
        writer.Append(++seq, s, item);
        MemoryContextSwitchTo(old);
        MemoryContextReset(row_cxt);
      }
      SPI_freetuptable(rows);
    }
    SPI_cursor_close(portal);
    scope.Leave();
  }
  writer.Close();
  MemoryContextDelete(row_cxt);
  PopActiveSnapshot();
  // A tenant without rows is walked from the sources (an index probe per
  // source): any tenant key a reader makes up never leaves a version behind.
  if (seq == 0) return 0;
  if (made_version_level == 0 || made_version_level > GetCurrentTransactionNestLevel())
    made_version_level = GetCurrentTransactionNestLevel();

  const double build_ms = static_cast<double>(GetCurrentTimestamp() - start) / 1000.0;
  Datum values[7] = {Int64GetDatum(version),
                     Int32GetDatum(def->config_id),
                     CStringGetTextDatum(tenant.text),
                     Int64GetDatum(generation),
                     Int64GetDatum(seq),
                     TimestampTzGetDatum(start),
                     Float8GetDatum(build_ms)};
  RunAsOwner(Stmt::kExportVersionInsert, values);
  // The version's rows are this transaction's: its pages read them next.
  CommandCounterIncrement();
  return version;
}

}  // namespace

void InitExportVersions() {
  RegisterXactCallback(RefusePrepare, nullptr);
  RegisterSubXactCallback(FollowSubtransactions, nullptr);
}

bool ExportVersionsInstalled() {
  const Oid nsp = RegistryNamespace();
  return OidIsValid(nsp) && OidIsValid(get_relname_relid("export_rows", nsp));
}

int64 StartVersion(ConfigDef* def, const TenantKey& tenant) {
  // Where nothing can be stored, or a version committed later is invisible,
  // only a version fresh for this transaction serves.
  // (No version holds what this transaction wrote and has not committed.)
  if (WroteOwnMarks(*def, tenant)) return 0;
  if (IsolationUsesXactSnapshot() || RecoveryInProgress() || XactReadOnly)
    return FreshVersion(*def, tenant, GetActiveSnapshot());

  // One session makes the version, the others wait for its transaction to
  // end and take what it made (as get() does, under a lock of its own).
  const LOCKTAG lock = ExportLock(def->config_id, tenant.hash);
  for (;;) {
    if (const int64 version = FreshVersion(*def, tenant, GetLatestSnapshot())) return version;
    if (TryLead(lock)) {
      // Look again under the lock: a leader may have committed just before.
      if (const int64 version = FreshVersion(*def, tenant, GetLatestSnapshot())) {
        StopLeading(lock);
        return version;
      }
      const int64 version = Materialize(def, tenant);  // leading until the transaction ends
      if (version == 0) StopLeading(lock);             // (nothing stored: nothing to wait for)
      return version;
    }
    // (A leader that never ends, an open or a prepared transaction, must not
    // stop the tenant's walks: past the wait they read page by page.)
    // (and so must two walks waiting for each other's versions: a deadlock)
    if (!WaitForLeader(lock, rebuild_wait_timeout_ms, true)) return 0;
  }
}

void WriteVersionPage(const ConfigDef& def, const TenantKey& tenant, int64 version, int64 after_seq, int64 page_size,
                      ReturnSetInfo* rsinfo, SeqCursor make_cursor) {
  // A version's rows never change: the newest snapshot reads them as well as
  // any, and sees the version this transaction may just have made.
  Snapshot snapshot = GetLatestSnapshot();
  Datum key[1] = {Int64GetDatum(version)};
  if (RunAsOwner(Stmt::kExportVersionOf, key, nullptr, snapshot) == 0) RefuseVersion(def, tenant, version);
  bool isnull = false;
  const int32 config_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
  char* owner_tenant = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
  if (config_id != def.config_id || strcmp(owner_tenant, tenant.text) != 0) RefuseVersion(def, tenant, version);

  Datum args[3] = {Int64GetDatum(version), Int64GetDatum(after_seq), Int64GetDatum(page_size)};
  RunAsOwner(Stmt::kExportPage, args, nullptr, snapshot);
  SPITupleTable* rows = SPI_tuptable;
  const uint64 n = SPI_processed;
  MemoryContext row_cxt =
      AllocSetContextCreate(CurrentMemoryContext, "config_guard export page row", ALLOCSET_DEFAULT_SIZES);
  for (uint64 i = 0; i < n; ++i) {
    CHECK_FOR_INTERRUPTS();
    MemoryContext old = MemoryContextSwitchTo(row_cxt);
    const int64 seq = DatumGetInt64(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull));
    const int source = DatumGetInt16(SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull));
    if (source < 0 || source >= def.nsources)
      elog(ERROR, "export version %lld has a row of an unknown source", static_cast<long long>(version));
    Datum values[3];
    bool nulls[3] = {false, false, false};
    values[0] = ObjectIdGetDatum(def.sources[source].shape.relid);
    // Detoasted: the page outlives the read of the version.
    values[1] = PointerGetDatum(PG_DETOAST_DATUM(SPI_getbinval(rows->vals[i], rows->tupdesc, 3, &isnull)));
    values[2] = make_cursor(def, tenant, version, seq);
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    MemoryContextSwitchTo(old);
    MemoryContextReset(row_cxt);
  }
  MemoryContextDelete(row_cxt);
  SPI_freetuptable(rows);
}

uint64 DropExpiredExportVersions(int64 max_versions) {
  Interval age = {};
  age.time = static_cast<int64>(export_version_ttl_s) * USECS_PER_SEC;
  Datum args[2] = {IntervalPGetDatum(&age), Int64GetDatum(max_versions)};
  SPI_connect();
  const uint64 rows = RunAsOwner(Stmt::kExportVersionsExpired, args);
  SPI_finish();
  return rows;
}

void ForgetExportVersions(int32 config_id) {
  if (!ExportVersionsInstalled()) return;
  Datum args[1] = {Int32GetDatum(config_id)};
  RunAsOwner(Stmt::kForgetExportRows, args);
}

}  // namespace config_guard

// The launcher and the cleanup workers (see background.hpp).
#include "background.hpp"
#include "export_versions.hpp"
#include "pg_compat.hpp"

#include "gucs.hpp"
#include "prune.hpp"
#include "registry.hpp"
#include "warm.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

PGDLLEXPORT void config_guard_launcher_main(Datum);
PGDLLEXPORT void config_guard_cleanup_main(Datum);
}

namespace config_guard {
namespace {

constexpr const char* kLibrary = "config_guard";
// A visit prunes in batches, each in its own short transaction (the prune
// fence holds rebuilds back for one batch at most), for at most this long:
// a backlog is worked off over several visits.
constexpr int64 kBatch = 10000;
constexpr int64 kCompactGroups = 1000;  // tenants per compaction batch
constexpr int64 kExpiredVersions = 10;  // export versions dropped per batch
constexpr long kVisitBudgetMs = 1000;

// The cleanup worker running now, if any (one at a time): DROP DATABASE and
// the other commands that need a database to themselves ask it to leave, as
// they do autovacuum workers, instead of failing after their 5 s wait.
struct Visit {
  pg_atomic_uint32 pid;
  pg_atomic_uint32 database;
};
Visit* visit = nullptr;

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;
ProcessUtility_hook_type prev_process_utility = nullptr;

void ShmemRequest() {
  if (prev_shmem_request_hook) prev_shmem_request_hook();
  RequestAddinShmemSpace(sizeof(Visit));
}

void ShmemStartup() {
  if (prev_shmem_startup_hook) prev_shmem_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found = false;
  visit = static_cast<Visit*>(ShmemInitStruct("config_guard cleanup visit", sizeof(Visit), &found));
  if (!found) {
    pg_atomic_init_u32(&visit->pid, 0);
    pg_atomic_init_u32(&visit->database, InvalidOid);
  }
  LWLockRelease(AddinShmemInitLock);
}

void EndVisit(int, Datum) { pg_atomic_write_u32(&visit->pid, 0); }

// The database a statement needs to itself, or InvalidOid.
Oid DatabaseNeededAlone(const Node* stmt) {
  const char* name = nullptr;
  if (IsA(stmt, DropdbStmt)) name = castNode(DropdbStmt, stmt)->dbname;
  if (IsA(stmt, RenameStmt) && castNode(RenameStmt, stmt)->renameType == OBJECT_DATABASE)
    name = castNode(RenameStmt, stmt)->subname;
  if (IsA(stmt, AlterDatabaseStmt)) name = castNode(AlterDatabaseStmt, stmt)->dbname;
  if (IsA(stmt, CreatedbStmt)) {
    ListCell* lc;
    foreach (lc, castNode(CreatedbStmt, stmt)->options) {
      auto* option = static_cast<DefElem*>(lfirst(lc));
      if (strcmp(option->defname, "template") == 0) name = defGetString(option);
    }
  }
  return name == nullptr ? InvalidOid : get_database_oid(name, true);
}

void ProcessUtility(PlannedStmt* pstmt, const char* query, bool read_only_tree, ProcessUtilityContext context,
                    ParamListInfo params, QueryEnvironment* env, DestReceiver* dest, QueryCompletion* qc) {
  // Every utility statement comes here (BEGIN, SET ...): the cheap test first.
  const NodeTag tag = nodeTag(pstmt->utilityStmt);
  if (visit != nullptr &&
      (tag == T_DropdbStmt || tag == T_RenameStmt || tag == T_AlterDatabaseStmt || tag == T_CreatedbStmt)) {
    const Oid database = DatabaseNeededAlone(pstmt->utilityStmt);
    const pid_t pid = static_cast<pid_t>(pg_atomic_read_u32(&visit->pid));
    if (OidIsValid(database) && pid != 0 && pg_atomic_read_u32(&visit->database) == database) kill(pid, SIGTERM);
  }
  if (prev_process_utility != nullptr)
    prev_process_utility(pstmt, query, read_only_tree, context, params, env, dest, qc);
  else
    standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc);
}

BackgroundWorker Worker(const char* name, const char* function) {
  BackgroundWorker w = {};
  snprintf(w.bgw_name, BGW_MAXLEN, "%s", name);
  snprintf(w.bgw_type, BGW_MAXLEN, "%s", name);
  w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  w.bgw_start_time = BgWorkerStart_RecoveryFinished;
  snprintf(w.bgw_library_name, BGW_MAXLEN, "%s", kLibrary);
  snprintf(w.bgw_function_name, BGW_MAXLEN, "%s", function);
  return w;
}

// The databases a worker can connect to (not templates), read from the
// shared catalog pg_database.
List* Databases() {
  List* databases = NIL;
  StartTransactionCommand();
  Relation rel = table_open(DatabaseRelationId, AccessShareLock);
  TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
  while (HeapTuple tuple = heap_getnext(scan, ForwardScanDirection)) {
    const auto* db = reinterpret_cast<Form_pg_database>(GETSTRUCT(tuple));
    if (db->datallowconn && !db->datistemplate) {
      MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
      databases = lappend_oid(databases, db->oid);
      MemoryContextSwitchTo(old);
    }
  }
  table_endscan(scan);
  table_close(rel, AccessShareLock);
  CommitTransactionCommand();
  return databases;
}

// Runs one cleanup worker for the database and waits for it to end: one
// database at a time, so the cleanup never takes more than one connection.
// False when no background worker slot is free.
bool CleanUp(Oid database) {
  BackgroundWorker w = Worker("config_guard cleanup", "config_guard_cleanup_main");
  w.bgw_restart_time = BGW_NEVER_RESTART;
  w.bgw_main_arg = ObjectIdGetDatum(database);
  w.bgw_notify_pid = MyProcPid;
  BackgroundWorkerHandle* handle = nullptr;
  if (!RegisterDynamicBackgroundWorker(&w, &handle)) return false;
  pid_t pid = 0;
  if (WaitForBackgroundWorkerStartup(handle, &pid) == BGWH_STARTED) WaitForBackgroundWorkerShutdown(handle);
  pfree(handle);
  return true;
}

}  // namespace

void InitBackground() {
  prev_shmem_request_hook = shmem_request_hook;
  shmem_request_hook = ShmemRequest;
  prev_shmem_startup_hook = shmem_startup_hook;
  shmem_startup_hook = ShmemStartup;
  prev_process_utility = ProcessUtility_hook;
  ProcessUtility_hook = ProcessUtility;
  BackgroundWorker w = Worker("config_guard launcher", "config_guard_launcher_main");
  w.bgw_restart_time = 10;
  RegisterBackgroundWorker(&w);
}

// In a PG_CATCH of the visit: one LOG line, no context, and the visit ends
// (the next tries again).
void EndVisitOnError(MemoryContext cxt, const char* what) {
  MemoryContextSwitchTo(cxt);
  ErrorData* error = CopyErrorData();
  FlushErrorState();
  ereport(LOG, (errmsg("%s: %s", what, error->message)));
  AbortCurrentTransaction();
  pgstat_report_activity(STATE_IDLE, nullptr);
}

// After the cleanup, the background builds of this visit: refresh-ahead
// queues the stale recent documents, then queued tenants are built at
// config_guard.background_build_rate for at most half an interval.
void BackgroundBuilds() {
  if (background_build_rate <= 0) return;
  // The queue's rows an open transaction holds (a warm() not yet committed)
  // are waited for a second at most: the cleanup of the other databases
  // waits for this visit. (Builders pin their own lock_timeout.)
  SetConfigOption("lock_timeout", "1s", PGC_SUSET, PGC_S_OVERRIDE);
  const int64 max_builds = static_cast<int64>(background_build_rate) * cleanup_interval_s;
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  PushActiveSnapshot(GetTransactionSnapshot());
  const bool current = ExtensionIsCurrent();
  if (current && refresh_ahead) {
    pgstat_report_activity(STATE_RUNNING, "config_guard refresh-ahead: queueing stale documents");
    MemoryContext cxt = CurrentMemoryContext;
    PG_TRY();
    { EnqueueStale(max_builds); }
    PG_CATCH();
    {
      EndVisitOnError(cxt, "config_guard refresh-ahead stopped");
      return;
    }
    PG_END_TRY();
    pgstat_report_activity(STATE_IDLE, nullptr);
  }
  PopActiveSnapshot();
  CommitTransactionCommand();
  if (current) RunQueuedBuilds(max_builds, cleanup_interval_s * 1000L / 2);
}

}  // namespace config_guard

void config_guard_launcher_main(Datum) {
  using namespace config_guard;
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  pqsignal(SIGTERM, die);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);  // shared catalogs only
  pgstat_report_appname("config_guard launcher");
  // The first pass waits one interval too: a server that just started has
  // more urgent work.
  ResetLatch(MyLatch);
  for (;;) {
    const long wait_ms = cleanup_interval_s > 0 ? cleanup_interval_s * 1000L : 60 * 1000L;
    static uint32 idle_event = 0;
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, wait_ms,
                    compat::WaitEvent(&idle_event, "ConfigGuardLauncherIdle"));
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
    if (ConfigReloadPending) {
      ConfigReloadPending = false;
      ProcessConfigFile(PGC_SIGHUP);
    }
    if (cleanup_interval_s <= 0) continue;
    List* databases = Databases();
    ListCell* lc;
    foreach (lc, databases) {
      CHECK_FOR_INTERRUPTS();
      if (!CleanUp(lfirst_oid(lc))) {
        // Said once a pass, and the pass ends: the next finds a slot or says it again.
        ereport(LOG, (errmsg("config_guard: no background worker slot for the cleanup"),
                      errhint("Raise max_worker_processes.")));
        break;
      }
    }
    list_free(databases);
  }
}

void config_guard_cleanup_main(Datum arg) {
  using namespace config_guard;
  pqsignal(SIGTERM, die);
  BackgroundWorkerUnblockSignals();
  const Oid database = DatumGetObjectId(arg);
  pg_atomic_write_u32(&visit->database, database);
  pg_atomic_write_u32(&visit->pid, static_cast<uint32>(MyProcPid));
  before_shmem_exit(EndVisit, 0);  // however the worker ends, nobody signals its pid again
  // As the bootstrap superuser, who may prune.
  BackgroundWorkerInitializeConnectionByOid(database, InvalidOid, 0);
  pgstat_report_appname("config_guard cleanup");
  // Settings a database's owner can give every session (ALTER DATABASE ...
  // SET) must not make the cleanup fail there.
  SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
  SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
  SetConfigOption("lock_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
  SetConfigOption("idle_in_transaction_session_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
  // get() stores only in READ COMMITTED.
  SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET, PGC_S_OVERRIDE);

  StartTransactionCommand();
  const char* database_name = MemoryContextStrdup(TopMemoryContext, get_database_name(MyDatabaseId));
  CommitTransactionCommand();
  Interval* age = static_cast<Interval*>(MemoryContextAllocZero(TopMemoryContext, sizeof(Interval)));
  age->time = static_cast<int64>(cleanup_age_s) * USECS_PER_SEC;
  const TimestampTz start = GetCurrentTimestamp();
  bool more = true;
  while (more && !TimestampDifferenceExceeds(start, GetCurrentTimestamp(), kVisitBudgetMs)) {
    CHECK_FOR_INTERRUPTS();
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    // Only where config_guard is installed and its objects are those of this
    // library (an older version waits for ALTER EXTENSION ... UPDATE).
    more = false;
    if (ExtensionIsCurrent()) {
      pgstat_report_activity(STATE_RUNNING, "config_guard cleanup: pruning marks");
      MemoryContext cxt = CurrentMemoryContext;
      PG_TRY();
      {
        // The fence only when there is something to prune: most visits find
        // nothing, and rebuilds never wait for them.
        more = AnythingToPrune(IntervalPGetDatum(age)) && PruneMarks(IntervalPGetDatum(age), kBatch) >= kBatch;
        // Then the marks of tenants written again and again fold into one
        // each (prune.hpp).
        if (AnythingToCompact() && CompactMarks(kCompactGroups) > 0) more = true;
        // And the documents nobody reads any more go.
        if (EvictUnread(kBatch) >= kBatch) more = true;
        // And the export versions no walk may read any more.
        if (ExportVersionsInstalled() && DropExpiredExportVersions(kExpiredVersions) > 0) more = true;
      }
      PG_CATCH();
      {
        EndVisitOnError(cxt, psprintf("config_guard cleanup of database \"%s\" stopped", database_name));
        return;
      }
      PG_END_TRY();
      pgstat_report_activity(STATE_IDLE, nullptr);
    }
    PopActiveSnapshot();
    CommitTransactionCommand();
  }
  BackgroundBuilds();
  pgstat_report_stat(true);
}

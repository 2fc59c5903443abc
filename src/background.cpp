// The launcher and the cleanup workers (see background.hpp).
#include "background.hpp"

#include "gucs.hpp"
#include "registry.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/extension.h"
#include "executor/spi.h"
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
Datum config_guard_prune_invalidations(PG_FUNCTION_ARGS);
}

namespace config_guard {
namespace {

constexpr const char* kLibrary = "config_guard";

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
void CleanUp(Oid database) {
  BackgroundWorker w = Worker("config_guard cleanup", "config_guard_cleanup_main");
  w.bgw_restart_time = BGW_NEVER_RESTART;
  w.bgw_main_arg = ObjectIdGetDatum(database);
  w.bgw_notify_pid = MyProcPid;
  BackgroundWorkerHandle* handle = nullptr;
  if (!RegisterDynamicBackgroundWorker(&w, &handle)) {
    ereport(LOG, (errmsg("config_guard: no background worker slot for the cleanup"),
                  errhint("Raise max_worker_processes.")));
    return;
  }
  pid_t pid = 0;
  if (WaitForBackgroundWorkerStartup(handle, &pid) == BGWH_STARTED) WaitForBackgroundWorkerShutdown(handle);
  pfree(handle);
}

}  // namespace

void InitBackground() {
  BackgroundWorker w = Worker("config_guard launcher", "config_guard_launcher_main");
  w.bgw_restart_time = 10;
  RegisterBackgroundWorker(&w);
}

}  // namespace config_guard

void config_guard_launcher_main(Datum) {
  using namespace config_guard;
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  pqsignal(SIGTERM, die);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);  // shared catalogs only
  pgstat_report_appname("config_guard launcher");
  for (;;) {
    const long wait_ms = cleanup_interval_s > 0 ? cleanup_interval_s * 1000L : 60 * 1000L;
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, wait_ms, PG_WAIT_EXTENSION);
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
      CleanUp(lfirst_oid(lc));
    }
    list_free(databases);
  }
}

void config_guard_cleanup_main(Datum arg) {
  using namespace config_guard;
  pqsignal(SIGTERM, die);
  BackgroundWorkerUnblockSignals();
  // As the bootstrap superuser, who may run prune_invalidations().
  BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(arg), InvalidOid, 0);
  pgstat_report_appname("config_guard cleanup");
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  PushActiveSnapshot(GetTransactionSnapshot());
  // Only where config_guard is installed and its objects are those of this
  // library (an older version waits for ALTER EXTENSION ... UPDATE).
  const Oid schema = ExtensionNamespace();
  const Oid configs = OidIsValid(schema) ? get_relname_relid("configs", schema) : InvalidOid;
  if (OidIsValid(configs) && get_attnum(configs, "builder_home") != InvalidAttrNumber) {
    // Called directly, not through SQL: nothing is looked up by name.
    pgstat_report_activity(STATE_RUNNING, "config_guard cleanup: prune_invalidations()");
    Interval* age = static_cast<Interval*>(palloc0(sizeof(Interval)));
    age->time = static_cast<int64>(cleanup_age_s) * USECS_PER_SEC;
    (void)DirectFunctionCall1(config_guard_prune_invalidations, IntervalPGetDatum(age));
    pgstat_report_activity(STATE_IDLE, nullptr);
  }
  PopActiveSnapshot();
  CommitTransactionCommand();
  pgstat_report_stat(true);
}

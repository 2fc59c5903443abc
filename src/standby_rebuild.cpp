#include "standby_rebuild.hpp"

#include "pg_compat.hpp"

#include "gucs.hpp"

extern "C" {
#include "libpq-fe.h"
#include "access/xlog.h"
#include "access/xlogrecovery.h"
#include "commands/dbcommands.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

namespace config_guard {
namespace {

uint32 primary_event = 0;
uint32 replay_event = 0;

// Milliseconds left until `deadline` (at least 1 while any is left, 0 after).
long Remaining(TimestampTz deadline) {
  const long ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
  return ms > 0 ? ms : (GetCurrentTimestamp() < deadline ? 1 : 0);
}

// Waits for the connection's socket (or the latch: interrupts are served).
// False once the deadline has passed.
bool WaitForSocket(PGconn* conn, int io, TimestampTz deadline) {
  const long remaining = Remaining(deadline);
  if (remaining <= 0) return false;
  const int rc = WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH | io, PQsocket(conn),
                                   remaining, compat::WaitEvent(&primary_event, "ConfigGuardAskPrimary"));
  if (rc & WL_LATCH_SET) {
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
  }
  return true;
}

PGconn* StartConnection(const char* conninfo) {
  // The conninfo first, then what this request needs: later keywords win.
  const char* keywords[] = {"dbname", "dbname", "application_name", nullptr};
  const char* values[] = {conninfo, get_database_name(MyDatabaseId), "config_guard standby rebuild", nullptr};
  return PQconnectStartParams(keywords, values, 1);
}

// Completes the connection `conn` started: whether it is open, or failed (the
// reason logged), or the deadline came first.
enum class Connection { kOpen, kFailed, kTimedOut };
Connection FinishConnection(PGconn* conn, TimestampTz deadline) {
  PostgresPollingStatusType status = PGRES_POLLING_WRITING;
  while (PQstatus(conn) != CONNECTION_BAD && status != PGRES_POLLING_OK && status != PGRES_POLLING_FAILED) {
    if (!WaitForSocket(conn, status == PGRES_POLLING_READING ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE, deadline))
      return Connection::kTimedOut;
    status = PQconnectPoll(conn);
  }
  if (PQstatus(conn) == CONNECTION_OK) return Connection::kOpen;
  ereport(LOG,
          (errmsg("config_guard: cannot reach the primary to ask for a rebuild: %s", pchomp(PQerrorMessage(conn)))));
  return Connection::kFailed;
}

// Runs one statement and returns its one value (palloc'd), or nullptr.
char* RunOne(PGconn* conn, const char* sql, int nparams, const char* const* params, TimestampTz deadline) {
  if (!PQsendQueryParams(conn, sql, nparams, nullptr, params, nullptr, nullptr, 0)) return nullptr;
  while (PQflush(conn) == 1) {
    if (!WaitForSocket(conn, WL_SOCKET_WRITEABLE, deadline)) return nullptr;
  }
  char* value = nullptr;
  bool ok = true;
  for (;;) {
    while (PQisBusy(conn)) {
      if (!WaitForSocket(conn, WL_SOCKET_READABLE, deadline) || !PQconsumeInput(conn)) return nullptr;
    }
    PGresult* result = PQgetResult(conn);
    if (result == nullptr) break;
    if (PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1 && !PQgetisnull(result, 0, 0)) {
      value = pstrdup(PQgetvalue(result, 0, 0));
    } else if (PQresultStatus(result) != PGRES_TUPLES_OK) {
      ereport(LOG, (errmsg("config_guard: the primary refused a rebuild: %s", pchomp(PQresultErrorMessage(result)))));
      ok = false;
    }
    PQclear(result);
  }
  return ok ? value : nullptr;
}

// Asks on an open connection; the position of the asked server's WAL once
// the rebuild committed there (its replay position if it is itself a
// standby, which has then replayed what its primary made), or
// InvalidXLogRecPtr.
XLogRecPtr Ask(PGconn* conn, const ConfigDef& def, const TenantKey& tenant, TimestampTz deadline) {
  const char* params[2] = {def.name, tenant.text};
  // (autocommit: the rebuild's transaction has committed when it returns)
  if (RunOne(conn, "SELECT config_guard.get($1, $2::pg_catalog.text) IS NOT NULL", 2, params, deadline) == nullptr)
    return InvalidXLogRecPtr;
  const char* lsn = RunOne(conn,
                           "SELECT CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()"
                           " ELSE pg_catalog.pg_current_wal_insert_lsn() END",
                           0, nullptr, deadline);
  if (lsn == nullptr) return InvalidXLogRecPtr;
  return DatumGetLSN(DirectFunctionCall1(pg_lsn_in, CStringGetDatum(lsn)));
}

bool WaitForReplay(XLogRecPtr lsn, TimestampTz deadline) {
  while (GetXLogReplayRecPtr(nullptr) < lsn) {
    const long remaining = Remaining(deadline);
    if (remaining <= 0 || !RecoveryInProgress()) return false;
    const int rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, Min(remaining, 10L),
                             compat::WaitEvent(&replay_event, "ConfigGuardStandbyReplay"));
    if (rc & WL_LATCH_SET) ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
  }
  return true;
}

const char* PrimaryConninfo() {
  if (primary_conninfo_setting != nullptr && primary_conninfo_setting[0] != '\0') return primary_conninfo_setting;
  // (read for the caller, who need not be allowed to see it)
  const char* server = GetConfigOption("primary_conninfo", true, false);
  return server != nullptr && server[0] != '\0' ? server : nullptr;
}

// Connects, asks, and closes the connection on every exit path: the
// connection is known here before anything can be interrupted (an error or a
// cancel closes it; a FATAL ends the process, which closes it).
pg_noinline XLogRecPtr AskClosing(const char* conninfo, const ConfigDef& def, const TenantKey& tenant,
                                  TimestampTz deadline, PrimaryAnswer* failure) {
  PGconn* volatile conn = StartConnection(conninfo);
  volatile XLogRecPtr lsn = InvalidXLogRecPtr;
  volatile Connection connection = Connection::kFailed;
  if (conn == nullptr) {
    *failure = PrimaryAnswer::kUnavailable;
    return InvalidXLogRecPtr;
  }
  PG_TRY();
  {
    connection = FinishConnection(conn, deadline);
    if (connection == Connection::kOpen) lsn = Ask(conn, def, tenant, deadline);
  }
  PG_CATCH();
  {
    PQfinish(conn);
    PG_RE_THROW();
  }
  PG_END_TRY();
  PQfinish(conn);
  // A primary that refused or failed before the deadline cannot be asked; one
  // that did not answer in time (while connecting too) is busy.
  *failure = connection == Connection::kFailed || (connection == Connection::kOpen && Remaining(deadline) > 0)
                 ? PrimaryAnswer::kUnavailable
                 : PrimaryAnswer::kTimedOut;
  return lsn;
}

}  // namespace

PrimaryAnswer AskPrimaryToRebuild(const ConfigDef& def, const TenantKey& tenant, TimestampTz deadline) {
  const char* conninfo = PrimaryConninfo();
  if (!standby_rebuild || conninfo == nullptr) return PrimaryAnswer::kUnavailable;
  PrimaryAnswer failure = PrimaryAnswer::kUnavailable;
  const XLogRecPtr lsn = AskClosing(conninfo, def, tenant, deadline, &failure);
  if (XLogRecPtrIsInvalid(lsn)) return failure;
  return WaitForReplay(lsn, deadline) ? PrimaryAnswer::kReplayed : PrimaryAnswer::kTimedOut;
}

}  // namespace config_guard

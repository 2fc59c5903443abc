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
#include "utils/lsyscache.h"
#include "access/xlog_internal.h"
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
// Whether the socket is ready; `*expired` once the deadline has passed.
bool WaitForSocket(PGconn* conn, int io, TimestampTz deadline, bool* expired) {
  const long remaining = Remaining(deadline);
  *expired = remaining <= 0;
  if (*expired) return false;
  const int rc = WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH | io, PQsocket(conn),
                                   remaining, compat::WaitEvent(&primary_event, "ConfigGuardAskPrimary"));
  if (rc & WL_LATCH_SET) {
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
  }
  return (rc & io) != 0;
}

// The settings the tenant's text is written and read under, on both sides.
constexpr const char* kPinnedOptions = "-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=postgres";

PGconn* StartConnection(const char* conninfo) {
  // The conninfo first, then what this request needs: later keywords win.
  const char* keywords[] = {"dbname", "dbname", "application_name", "options", nullptr};
  const char* values[] = {conninfo, get_database_name(MyDatabaseId), "config_guard standby rebuild", kPinnedOptions,
                          nullptr};
  return PQconnectStartParams(keywords, values, 1);
}

// Errors of a primary that is busy rather than unable: its own waits timed
// out, or it has no connection to spare right now.
bool IsBusy(const char* sqlstate) {
  return sqlstate != nullptr && (strcmp(sqlstate, "55P03") == 0 || strcmp(sqlstate, "53300") == 0 ||
                                 strcmp(sqlstate, "57P03") == 0 || strcmp(sqlstate, "53400") == 0);
}

// Completes the connection `conn` started: whether it is open, or failed (the
// reason logged), or the deadline came first (or the primary is busy).
enum class Outcome { kOk, kFailed, kBusy };
Outcome FinishConnection(PGconn* conn, TimestampTz deadline) {
  PostgresPollingStatusType status = PGRES_POLLING_WRITING;
  while (PQstatus(conn) != CONNECTION_BAD && status != PGRES_POLLING_OK && status != PGRES_POLLING_FAILED) {
    // (polled only when the socket is ready: libpq would block otherwise)
    bool expired = false;
    const int io = status == PGRES_POLLING_READING ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE;
    if (WaitForSocket(conn, io, deadline, &expired)) status = PQconnectPoll(conn);
    if (expired) return Outcome::kBusy;
  }
  if (PQstatus(conn) == CONNECTION_OK) {
    if (PQsetnonblocking(conn, 1) != 0) return Outcome::kFailed;
    return Outcome::kOk;
  }
  const char* reason = pchomp(PQerrorMessage(conn));
  ereport(LOG, (errmsg("config_guard: cannot reach the primary to ask for a rebuild: %s", reason)));
  return strstr(reason, "too many clients") != nullptr || strstr(reason, "starting up") != nullptr ? Outcome::kBusy
                                                                                                   : Outcome::kFailed;
}

// Runs one statement; its one value (palloc'd) in `*value`.
Outcome RunOne(PGconn* conn, const char* sql, int nparams, const char* const* params, TimestampTz deadline,
               char** value) {
  *value = nullptr;
  if (!PQsendQueryParams(conn, sql, nparams, nullptr, params, nullptr, nullptr, 0)) return Outcome::kFailed;
  bool expired = false;
  for (int pending = PQflush(conn); pending != 0; pending = PQflush(conn)) {
    if (pending < 0) return Outcome::kFailed;
    if (WaitForSocket(conn, WL_SOCKET_WRITEABLE | WL_SOCKET_READABLE, deadline, &expired) && !PQconsumeInput(conn))
      return Outcome::kFailed;
    if (expired) return Outcome::kBusy;
  }
  Outcome outcome = Outcome::kOk;
  for (;;) {
    while (PQisBusy(conn)) {
      if (WaitForSocket(conn, WL_SOCKET_READABLE, deadline, &expired) && !PQconsumeInput(conn)) return Outcome::kFailed;
      if (expired) return Outcome::kBusy;
    }
    PGresult* result = PQgetResult(conn);
    if (result == nullptr) break;
    if (PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1 && !PQgetisnull(result, 0, 0)) {
      *value = pstrdup(PQgetvalue(result, 0, 0));
    } else if (PQresultStatus(result) != PGRES_TUPLES_OK) {
      const char* sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
      ereport(LOG, (errmsg("config_guard: the primary refused a rebuild: %s", pchomp(PQresultErrorMessage(result)))));
      outcome = IsBusy(sqlstate) ? Outcome::kBusy : Outcome::kFailed;
    }
    PQclear(result);
  }
  return outcome != Outcome::kOk ? outcome : *value != nullptr ? Outcome::kOk : Outcome::kFailed;
}

// The tenant as the primary's input function reads it: its output under the
// pinned settings the connection also has (the canonical key of a date or an
// enum is an image of its bytes, which no input function reads).
const char* TenantForPrimary(const ConfigDef& def, const TenantKey& tenant) {
  const int level = NewGUCNestLevel();
  (void)set_config_option("DateStyle", "ISO", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
  (void)set_config_option("TimeZone", "UTC", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
  (void)set_config_option("IntervalStyle", "postgres", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
  Oid output = InvalidOid;
  bool varlena = false;
  getTypeOutputInfo(def.tenant_type, &output, &varlena);
  const char* text = OidOutputFunctionCall(output, tenant.value);
  AtEOXact_GUC(true, level);
  return text;
}

// Asks on an open connection; the position of the asked server's WAL once
// the rebuild committed there (its replay position if it is itself a
// standby, which has then replayed what its primary made).
Outcome Ask(PGconn* conn, const ConfigDef& def, const TenantKey& tenant, TimestampTz deadline, XLogRecPtr* lsn) {
  const char* params[2] = {def.name, TenantForPrimary(def, tenant)};
  char* value = nullptr;
  // (autocommit: the rebuild's transaction has committed when it returns)
  Outcome outcome =
      RunOne(conn, "SELECT config_guard.get($1, $2::pg_catalog.text) IS NOT NULL", 2, params, deadline, &value);
  if (outcome != Outcome::kOk) return outcome;
  outcome = RunOne(conn,
                   "SELECT CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()"
                   " ELSE pg_catalog.pg_current_wal_insert_lsn() END",
                   0, nullptr, deadline, &value);
  if (outcome != Outcome::kOk) return outcome;
  XLogRecPtr at = DatumGetLSN(DirectFunctionCall1(pg_lsn_in, CStringGetDatum(value)));
  // The insert position after a record that ended a page is past the next
  // page's header, which replay reaches only with the next record: step back.
  if (at % XLOG_BLCKSZ == SizeOfXLogShortPHD && XLogSegmentOffset(at, wal_segment_size) != SizeOfXLogShortPHD)
    at -= SizeOfXLogShortPHD;
  else if (XLogSegmentOffset(at, wal_segment_size) == SizeOfXLogLongPHD)
    at -= SizeOfXLogLongPHD;
  *lsn = at;
  return Outcome::kOk;
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
pg_noinline Outcome AskClosing(const char* conninfo, const ConfigDef& def, const TenantKey& tenant,
                               TimestampTz deadline, XLogRecPtr* lsn) {
  PGconn* volatile conn = StartConnection(conninfo);
  volatile Outcome outcome = Outcome::kFailed;
  if (conn == nullptr) return Outcome::kFailed;
  PG_TRY();
  {
    outcome = FinishConnection(conn, deadline);
    if (outcome == Outcome::kOk) outcome = Ask(conn, def, tenant, deadline, lsn);
  }
  PG_CATCH();
  {
    PQfinish(conn);
    PG_RE_THROW();
  }
  PG_END_TRY();
  PQfinish(conn);
  return outcome;
}

}  // namespace

PrimaryAnswer AskPrimaryToRebuild(const ConfigDef& def, const TenantKey& tenant, TimestampTz deadline) {
  const char* conninfo = PrimaryConninfo();
  if (!standby_rebuild || conninfo == nullptr) return PrimaryAnswer::kUnavailable;
  XLogRecPtr lsn = InvalidXLogRecPtr;
  const Outcome outcome = AskClosing(conninfo, def, tenant, deadline, &lsn);
  if (outcome == Outcome::kFailed) return PrimaryAnswer::kUnavailable;
  if (outcome == Outcome::kBusy) return PrimaryAnswer::kTimedOut;
  return WaitForReplay(lsn, deadline) ? PrimaryAnswer::kReplayed : PrimaryAnswer::kTimedOut;
}

}  // namespace config_guard

// set_role_limit() and drop_role_limit(), and the role_counters() behind
// role_stats. A change is staged in the calling transaction and applied to
// the admission queue (admission_queue.hpp) at its commit: a rollback, also
// to a savepoint taken before it, discards it, and a transaction that changed
// limits cannot be prepared (it would commit elsewhere).
#include "core/interval.hpp"  // first: core headers precede postgres.h
#include "admission_queue.hpp"
#include "gateway.hpp"
#include "module.hpp"

extern "C" {
#include "access/xact.h"
#include "funcapi.h"
#include "utils/acl.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}

namespace config_guard {
namespace {

struct PendingLimit {
  LimitChange change;
  SubTransactionId subxact;  // a rollback to before it discards it
};
constexpr int kMaxPending = 64;
PendingLimit pending[kMaxPending];
int npending = 0;

void Stage(LimitChange change) {
  // Appended, never merged: a rollback to a savepoint must find the change
  // made before it. At commit the last change of a role wins.
  if (npending == kMaxPending)
    ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("too many role limit changes in one transaction")));
  pending[npending++] = {change, GetCurrentSubTransactionId()};
}

void XactCallback(XactEvent event, void*) {
  switch (event) {
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
      npending = 0;
      break;
    case XACT_EVENT_PRE_PREPARE:
      if (npending > 0)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("cannot PREPARE a transaction that has changed role limits"),
                        errdetail("Role limits apply at commit; a prepared transaction commits elsewhere.")));
      break;
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT: {
      if (npending == 0) break;
      LimitChange changes[kMaxPending];
      for (int i = 0; i < npending; ++i) changes[i] = pending[i].change;
      const int n = npending;
      npending = 0;
      if (!ApplyLimitChanges(changes, n))
        ereport(WARNING, (errmsg("config_guard: too many limited roles, some limits were not applied")));
      break;
    }
    default:
      break;
  }
}

void SubXactCallback(SubXactEvent event, SubTransactionId subid, SubTransactionId parent, void*) {
  if (event == SUBXACT_EVENT_ABORT_SUB) {
    int kept = 0;
    for (int i = 0; i < npending; ++i) {
      if (pending[i].subxact < subid) pending[kept++] = pending[i];
    }
    npending = kept;
  } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
    for (int i = 0; i < npending; ++i) {
      if (pending[i].subxact == subid) pending[i].subxact = parent;
    }
  }
}

int TimeoutMs(const Interval* span) {
  int64 us = 0;
  if (!core::IntervalMicroseconds(span->month, span->day, span->time, &us) || us < 1000 ||
      us > static_cast<int64>(24) * 3600 * 1000000)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("queue_timeout must be between 1 millisecond and 1 day")));
  return static_cast<int>(us / 1000);
}

}  // namespace

void InitRoleLimits() {
  RegisterXactCallback(XactCallback, nullptr);
  RegisterSubXactCallback(SubXactCallback, nullptr);
}

CG_FUNCTION(config_guard_set_role_limit) {
  RequirePreloaded();
  for (int i = 0; i < 4; ++i) {
    if (PG_ARGISNULL(i))
      ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("arguments of set_role_limit must not be null")));
  }
  const LimitChange change = {PG_GETARG_OID(0), false, PG_GETARG_INT32(1), PG_GETARG_INT32(2),
                              TimeoutMs(PG_GETARG_INTERVAL_P(3))};
  if (change.max_active < 1)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("max_active must be at least 1")));
  if (change.max_queued < 0)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("max_queued must not be negative")));

  SPI_connect();
  Datum values[4] = {PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), PG_GETARG_DATUM(2), PG_GETARG_DATUM(3)};
  RunAsOwner(Stmt::kSetRoleLimit, values);
  SPI_finish();
  Stage(change);
  PG_RETURN_VOID();
}

CG_FUNCTION(config_guard_drop_role_limit) {
  RequirePreloaded();
  if (PG_ARGISNULL(0)) ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("role must not be null")));
  const Oid role = PG_GETARG_OID(0);
  const bool limited = RoleIsLimited(role);

  SPI_connect();
  Datum values[1] = {PG_GETARG_DATUM(0)};
  const uint64 deleted = RunAsOwner(Stmt::kDropRoleLimit, values);
  SPI_finish();
  if (!limited && deleted == 0)
    ereport(ERROR,
            (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("role \"%s\" has no limit", GetUserNameFromId(role, false))));
  Stage({role, true, 0, 0, 0});
  PG_RETURN_VOID();
}

CG_FUNCTION(config_guard_role_counters) {
  RequirePreloaded();
  InitMaterializedSRF(fcinfo, 0);
  auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  RoleCounters* counters = nullptr;
  const int n = SnapshotRoleCounters(&counters);
  for (int i = 0; i < n; ++i) {
    const RoleCounters& e = counters[i];
    Datum values[12] = {ObjectIdGetDatum(e.role),
                        Int32GetDatum(e.max_active),
                        Int32GetDatum(e.max_queued),
                        Int32GetDatum(e.queue_timeout_ms),
                        Int32GetDatum(e.active),
                        Int32GetDatum(e.queued),
                        Int64GetDatum(static_cast<int64>(e.admitted)),
                        Int64GetDatum(static_cast<int64>(e.ever_queued)),
                        Int64GetDatum(static_cast<int64>(e.wait_timeouts)),
                        Int64GetDatum(static_cast<int64>(e.queue_full)),
                        Float8GetDatum(e.avg_wait_ms),
                        Float8GetDatum(e.max_wait_ms)};
    bool nulls[12] = {};
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  }
  return static_cast<Datum>(0);
}

}  // namespace config_guard

// config_guard.get(): the tenant's document, fresh unless the caller allows
// staleness, with one builder run per invalidation however many ask.
//
// READ COMMITTED (the normal case):
//   fresh stored document             -> returned (hit)
//   stale, within max_stale, another
//     session rebuilding              -> stored document returned at once
//   stale or missing, nobody leading  -> this session leads: runs the builder,
//                                        stores and returns the result
//   someone leading                   -> wait for the leader's transaction to
//                                        end (rebuild_wait_timeout), look again
//   builder backing off               -> last good document if younger than
//                                        stale_if_error, else a fast error
// REPEATABLE READ / SERIALIZABLE: the transaction's snapshot cannot see a
// rebuild committed after it started, so get() neither waits nor stores: it
// returns the stored document if fresh for that snapshot, else runs the
// builder under the transaction's snapshot and returns the result. A hot
// standby, which cannot store, asks the primary in READ COMMITTED (0.6,
// standby_rebuild.hpp), and otherwise answers the same way.
#include "core/interval.hpp"
#include "builder.hpp"
#include "coalesce.hpp"
#include "gucs.hpp"
#include "module.hpp"
#include "prune.hpp"
#include "backoff_table.hpp"
#include "builder_slots.hpp"
#include "config_counters.hpp"
#include "mark_skip.hpp"
#include "mark_writers.hpp"
#include "read_check.hpp"
#include "recent_reads.hpp"
#include "standby_rebuild.hpp"
#include "warm.hpp"
#include "store.hpp"

extern "C" {
#include "access/xact.h"
#include "access/xlog.h"
#include "storage/proc.h"
#include "datatype/timestamp.h"
#include "utils/hsearch.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace config_guard {
namespace {

// -- Known-fresh document versions --------------------------------------------------
// A hit normally probes the invalidation marks. This backend may skip the
// probes for a document version it has verified fresh, as long as no
// transaction that writes marks for the config is in progress or has ended
// since (ReadMarkEpoch: quiet, and the same epoch).
//
// Why that is safe: the count is read before the epoch, and a writer bumps the
// count before its first mark and, after its commit, the epoch before the
// count. So a writer that committed before this statement's snapshot is seen
// either as in progress or through a changed epoch. And a version is remembered
// only when verified under a snapshot taken after the epoch was read, so every
// writer that ended before that read had its marks checked.
struct KnownFreshKey {
  uint64 tenant_hash;
  int32 config_id;
  int32 zero;  // no padding bytes in a HASH_BLOBS key
};
struct KnownFresh {
  KnownFreshKey key;
  uint64 epoch;
  uint64 generation;
  DocumentVersion version;
};
constexpr long kMaxKnownFresh = 4096;
HTAB* known_fresh = nullptr;

KnownFresh* FindKnownFresh(int32 config_id, uint64 tenant_hash, bool create) {
  if (known_fresh == nullptr || (create && hash_get_num_entries(known_fresh) >= kMaxKnownFresh)) {
    if (known_fresh != nullptr) hash_destroy(known_fresh);
    HASHCTL ctl = {};
    ctl.keysize = sizeof(KnownFreshKey);
    ctl.entrysize = sizeof(KnownFresh);
    known_fresh = hash_create("config_guard known-fresh documents", 256, &ctl, HASH_ELEM | HASH_BLOBS);
  }
  const KnownFreshKey key = {tenant_hash, config_id, 0};
  return static_cast<KnownFresh*>(hash_search(known_fresh, &key, create ? HASH_ENTER : HASH_FIND, nullptr));
}

// The first look of a READ COMMITTED get(), with the fast path when it applies.
StoredDocument FirstLook(const ConfigDef& def, const TenantKey& tenant) {
  const MarkEpoch marks = ReadMarkEpoch(def.config_id);
  if (!marks.quiet) return LookupDocument(def, tenant.text, GetActiveSnapshot());
  const KnownFresh* known = FindKnownFresh(def.config_id, tenant.hash, false);
  if (known != nullptr && known->epoch == marks.epoch && known->generation == marks.generation)
    return LookupDocument(def, tenant.text, GetActiveSnapshot(), &known->version);
  // Verify under a snapshot taken after reading the epoch, then remember.
  const StoredDocument doc = LookupDocument(def, tenant.text, GetLatestSnapshot());
  if (doc.found && doc.fresh) {
    KnownFresh* entry = FindKnownFresh(def.config_id, tenant.hash, true);
    entry->epoch = marks.epoch;
    entry->generation = marks.generation;
    entry->version = doc.version;
  }
  return doc;
}

int64 MaxStaleMicroseconds(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(2)) return 0;
  const Interval* span = PG_GETARG_INTERVAL_P(2);
  int64 us = 0;
  if (!core::IntervalMicroseconds(span->month, span->day, span->time, &us))
    ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE), errmsg("max_stale is out of range")));
  if (us < 0) ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("max_stale must not be negative")));
  return us;
}

// In READ COMMITTED, a snapshot taken now: it sees a rebuild that committed
// while this caller waited for it.
Snapshot FreshSnapshot() { return GetLatestSnapshot(); }

char* FormatTime(TimestampTz t) { return pstrdup(timestamptz_to_str(t)); }

// The answer while the builder backs off: the last good document if it is
// recent enough, else a fast error carrying the builder's message.
Datum AnswerFailure(const ConfigDef& def, const TenantKey& tenant, const StoredDocument& stored,
                    const BackoffState& state) {
  if (stored.found && stale_if_error_s > 0 && stored.age_us <= static_cast<int64>(stale_if_error_s) * USECS_PER_SEC) {
    CountEvent(def.config_id, Counter::kStaleHit);
    return stored.document;
  }
  ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                  errmsg("builder of config \"%s\" is failing for tenant %s", def.name, tenant.display),
                  errdetail("Last error (%d in a row): %s", state.failures, state.last_error),
                  errhint("The next attempt is allowed after %s.", FormatTime(state.next_attempt))));
  pg_unreachable();
}

[[noreturn]] void RefuseWaitTimeout(const ConfigDef& def, const TenantKey& tenant, const char* what) {
  ereport(ERROR, (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
                  errmsg("timed out waiting for %s of config \"%s\" for tenant %s", what, def.name, tenant.display),
                  errdetail("The wait exceeded config_guard.rebuild_wait_timeout (%d ms).", rebuild_wait_timeout_ms),
                  errhint("Retry later, or pass max_stale to accept the stored document.")));
}

// Runs the builder; on success stores (if asked) and returns the document.
Datum Rebuild(ConfigDef* def, const TenantKey& tenant, const StoredDocument& stored, bool store, int64 max_stale_us) {
  const TenantSlotKey slot = {MyDatabaseId, def->config_id, tenant.hash};
  // Before the builder's snapshot (and before taking a builder slot: the
  // wait holds none): writes covered by a mark this build may fold are in it
  // (mark_skip.hpp); a fence that cannot complete stores nothing.
  if (store && !FenceSkippers(def->config_id, tenant.text)) store = false;
  // At most max_rebuilds_per_config builders of this config run at once.
  if (!AcquireBuilderSlot(def->config_id, rebuild_wait_timeout_ms)) {
    CountEvent(def->config_id, Counter::kWaitTimeout);
    if (stored.found && max_stale_us > 0) return stored.document;
    RefuseWaitTimeout(*def, tenant, "a builder slot");
  }
  if (store) HoldPruneFence();  // before the builder's snapshot (prune.hpp)
  BuildResult built = RunBuilder(def, tenant);
  ReleaseBuilderSlot();
  if (built.timed_out) {
    CountEvent(def->config_id, Counter::kBuilderFailure);
    RecordBuilderFailure(slot,
                         psprintf("the builder did not finish within statement_timeout (%d ms)", StatementTimeout));
    ReThrowError(built.error);
  }
  if (!built.ok) {
    CountEvent(def->config_id, Counter::kBuilderFailure);
    const BackoffState state = RecordBuilderFailure(slot, built.error->message ? built.error->message : "");
    return AnswerFailure(*def, tenant, stored, state);
  }
  if (built.wrote_own_sources) {
    CountEvent(def->config_id, Counter::kSelfWrite);
    ereport(WARNING, (errmsg("builder of config \"%s\" writes to the config's own sources", def->name),
                      errdetail("Its writes for tenant %s are taken as part of the document it built; writes for other "
                                "tenants invalidate theirs.",
                                tenant.display),
                      errhint("A builder should only read: move the writes out of it.")));
  }
  const bool background = BackgroundBuildRunning();
  TimestampTz replaced_built_at = 0;
  if (store &&
      StoreDocument(*def, tenant.text, built.document, built.snapshot, built.built_at, built.build_ms, background,
                    &replaced_built_at) &&
      !ReadSince(def->config_id, tenant.hash, replaced_built_at))
    CountEvent(def->config_id, Counter::kWastedRefresh);
  if (background) CountEvent(def->config_id, Counter::kBackgroundBuild);
  ClearBackoff(slot);
  int64 runs = 0;
  if (CountBuilderRun(def->config_id, built.build_ms, &runs))
    ereport(WARNING,
            (errmsg("config \"%s\": %lld builder runs in the last minute", def->name, static_cast<long long>(runs)),
             errdetail("config_guard.rebuild_alert_per_minute is %d.", rebuild_alert_per_minute),
             errhint("Look for a rebuild storm: invalidations from bulk writes, or clients bypassing "
                     "their cache.")));
  return built.document;
}

// Builds under the transaction's snapshot without storing (the miss is
// counted by the caller).
Datum BuildUnstored(ConfigDef* def, const TenantKey& tenant, const StoredDocument& stored) {
  BackoffState state;
  if (ActiveBackoff({MyDatabaseId, def->config_id, tenant.hash}, &state)) {
    CountEvent(def->config_id, Counter::kBackoffRefusal);
    return AnswerFailure(*def, tenant, stored, state);
  }
  return Rebuild(def, tenant, stored, false, 0);
}

Datum GetUnderTransactionSnapshot(ConfigDef* def, const TenantKey& tenant, const StoredDocument& stored) {
  CountEvent(def->config_id, Counter::kMiss);
  return BuildUnstored(def, tenant, stored);
}

// The miss path: `stored` is what the first look found (stale or missing).
Datum GetReadCommitted(ConfigDef* def, const TenantKey& tenant, int64 max_stale_us, StoredDocument stored) {
  const LOCKTAG lock = RebuildLock(def->config_id, tenant.hash);
  CountEvent(def->config_id, Counter::kMiss);
  for (bool first = true;; first = false) {
    if (!first) {
      stored = LookupDocument(*def, tenant.text, FreshSnapshot());
      if (stored.found && stored.fresh) return stored.document;
    }

    BackoffState state;
    if (ActiveBackoff({MyDatabaseId, def->config_id, tenant.hash}, &state)) {
      CountEvent(def->config_id, Counter::kBackoffRefusal);
      return AnswerFailure(*def, tenant, stored, state);
    }
    const bool stale_ok = stored.found && max_stale_us > 0 && stored.age_us <= max_stale_us;
    if (TryLead(lock)) {
      // Look again under the lock: a leader may have committed just before.
      const StoredDocument again = LookupDocument(*def, tenant.text, FreshSnapshot());
      if (again.found && again.fresh) {
        StopLeading(lock);
        return again.document;
      }
      return Rebuild(def, tenant, again, true, max_stale_us);
    }
    if (stale_ok) {
      CountEvent(def->config_id, Counter::kStaleHit);
      return stored.document;
    }
    CountEvent(def->config_id, Counter::kCoalescedWait);
    if (!WaitForLeader(lock, rebuild_wait_timeout_ms)) {
      CountEvent(def->config_id, Counter::kWaitTimeout);
      if (stored.found && max_stale_us > 0) return stored.document;
      RefuseWaitTimeout(*def, tenant, "the rebuild");
    }
  }
}

// A hot standby's miss in READ COMMITTED: one session of this standby asks the
// primary for the tenant (standby_rebuild.hpp), the others wait for it, and
// all read the document replication brings; everything within
// rebuild_wait_timeout, as on a primary. A config's requests from this
// standby take builder slots (max_rebuilds_per_config): as many connections to
// the primary at most. Only when the primary cannot be asked at all does the
// standby build (without storing), as in REPEATABLE READ.
Datum GetOnStandby(ConfigDef* def, const TenantKey& tenant, int64 max_stale_us, StoredDocument stored) {
  const LOCKTAG lock = RebuildLock(def->config_id, tenant.hash);
  const TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), Max(rebuild_wait_timeout_ms, 1));
  const auto remaining_ms = [deadline]() {
    const long ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
    return static_cast<int>(Min(ms, static_cast<long>(INT_MAX)));
  };
  CountEvent(def->config_id, Counter::kMiss);
  bool asked = false;  // (once per call: a primary that answered without storing is not asked again)
  for (bool first = true;; first = false) {
    if (!first) {
      stored = LookupDocument(*def, tenant.text, FreshSnapshot());
      if (stored.found && stored.fresh) return stored.document;
    }
    const bool stale_ok = stored.found && max_stale_us > 0 && stored.age_us <= max_stale_us;
    if (asked) return BuildUnstored(def, tenant, stored);
    if (TryLead(lock)) {
      asked = true;
      PrimaryAnswer answer = PrimaryAnswer::kTimedOut;
      if (remaining_ms() > 0 && AcquireBuilderSlot(def->config_id, remaining_ms())) {
        answer = AskPrimaryToRebuild(*def, tenant, deadline);
        ReleaseBuilderSlot();
      }
      StopLeading(lock);  // (what it waited for has been replayed: the others may look)
      if (answer == PrimaryAnswer::kReplayed) continue;
      if (answer == PrimaryAnswer::kUnavailable) {
        if (stale_ok) {
          CountEvent(def->config_id, Counter::kStaleHit);
          return stored.document;
        }
        return BuildUnstored(def, tenant, stored);
      }
      break;
    }
    if (stale_ok) {
      CountEvent(def->config_id, Counter::kStaleHit);
      return stored.document;
    }
    CountEvent(def->config_id, Counter::kCoalescedWait);
    if (remaining_ms() <= 0 || !WaitForLeader(lock, remaining_ms())) break;
  }
  // (a last look: what was waited for may have arrived just now)
  stored = LookupDocument(*def, tenant.text, FreshSnapshot());
  if (stored.found && stored.fresh) return stored.document;
  CountEvent(def->config_id, Counter::kWaitTimeout);
  if (stored.found && max_stale_us > 0) return stored.document;
  RefuseWaitTimeout(*def, tenant, "the primary's rebuild");
}

// A reader was answered: refresh-ahead keeps what readers read fresh, and
// eviction keeps it. Noted after the answer, so that a rebuild it caused sees
// the reads before it (a background document replaced unread is a wasted
// refresh). The background builds themselves are not reads.
void NoteAnswered(int32 config_id, uint64 tenant_hash) {
  if (!BackgroundBuildRunning()) NoteRead(config_id, tenant_hash);
}

// get() called by a builder: the other builder runs here, under this
// builder's read check, and its answer is never a stored one (which could
// be older than the document this builder is making, or a last good one
// while it fails). Its failure is this builder's.
Datum BuildNested(ConfigDef* def, const TenantKey& tenant) {
  CheckNestedConfig(*def);
  BuildResult built = RunBuilder(def, tenant);
  if (!built.ok) ReThrowError(built.error);
  int64 runs = 0;
  CountBuilderRun(def->config_id, built.build_ms, &runs);
  return built.document;
}

}  // namespace

CG_FUNCTION(config_guard_get) {
  RequirePreloaded();
  if (PG_ARGISNULL(0)) ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("config must not be null")));
  const int64 max_stale_us = MaxStaleMicroseconds(fcinfo);

  ConfigDef* def = AcquireConfig(text_to_cstring(PG_GETARG_TEXT_PP(0)));
  RequireReadAccess(def);
  const TenantKey tenant = TenantFromArgument(fcinfo, 1, *def);
  if (BuilderCodeRunning() != nullptr) {
    const Datum document = BuildNested(def, tenant);
    ReleaseConfig();
    PG_RETURN_DATUM(document);
  }

  // The hit path: index look-ups, no SPI; in READ COMMITTED usually just the
  // document's, when no mark writer of the config has been active since. On a
  // standby the marks arrive by WAL replay, unseen by the writer counters, so
  // they are always probed there, and a stale tenant is built without being
  // stored (a standby cannot write). A READ ONLY transaction cannot store
  // either: it answers the same way.
  const bool transaction_snapshot = IsolationUsesXactSnapshot() || RecoveryInProgress() || XactReadOnly;
  const StoredDocument stored =
      transaction_snapshot ? LookupDocument(*def, tenant.text, GetActiveSnapshot()) : FirstLook(*def, tenant);
  if (stored.found && stored.fresh) {
    CountEvent(def->config_id, Counter::kHit);
    NoteAnswered(def->config_id, tenant.hash);
    ReleaseConfig();
    PG_RETURN_DATUM(stored.document);
  }

  SPI_connect();
  const bool standby_read_committed = RecoveryInProgress() && !IsolationUsesXactSnapshot();
  const Datum document = standby_read_committed ? GetOnStandby(def, tenant, max_stale_us, stored)
                         : transaction_snapshot ? GetUnderTransactionSnapshot(def, tenant, stored)
                                                : GetReadCommitted(def, tenant, max_stale_us, stored);
  const Datum result = SPI_datumTransfer(document, false, -1);
  NoteAnswered(def->config_id, tenant.hash);
  ReleaseConfig();
  SPI_finish();
  PG_RETURN_DATUM(result);
}

}  // namespace config_guard

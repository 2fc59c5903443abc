#include "warm.hpp"

#include "canonical_key.hpp"
#include "gateway.hpp"
#include "gucs.hpp"
#include "identity.hpp"
#include "module.hpp"
#include "recent_reads.hpp"
#include "registry.hpp"
#include "tenant.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type_d.h"
#include "pgstat.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace config_guard {
namespace {

constexpr int kEnqueueBatch = 10000;
bool background_build = false;  // a background build's get() is running

// Queues `tenants` (canonical keys) of the config; returns how many were new.
int64 Enqueue(int32 config_id, Datum* tenants, int n) {
  if (n == 0) return 0;
  Datum values[2] = {Int32GetDatum(config_id),
                     PointerGetDatum(construct_array(tenants, n, TEXTOID, -1, false, TYPALIGN_INT))};
  return static_cast<int64>(RunAsOwner(Stmt::kEnqueue, values));
}

}  // namespace

// config_guard.warm(config): every tenant found in the config's sources that
// carry the tenant column (a child's tenants are its parents'), queued once.
CG_FUNCTION(config_guard_warm) {
  RequirePreloaded();
  if (PG_ARGISNULL(0)) ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("config must not be null")));
  SPI_connect();
  ConfigDef* def = AcquireConfig(text_to_cstring(PG_GETARG_TEXT_PP(0)));
  RequireOwnership(*def, "warm");
  PreventCommandIfReadOnly("config_guard.warm()");
  int64 queued = 0;
  for (int s = 0; s < def->nsources; ++s) {
    const SourceShape& shape = def->sources[s].shape;
    if (shape.child) continue;
    // Read as the config's owner, whose tables they are: the distinct values
    // of the tenant column, made canonical keys as get() makes them.
    IdentityScope scope(def->owner, true);
    scope.Pin("search_path", kSafeSearchPath);
    const char* sql = psprintf("SELECT DISTINCT %s FROM %s s WHERE %s IS NOT NULL", shape.tenant_expr,
                               shape.qualified_name, shape.tenant_expr);
    if (SPI_execute(sql, true, 0) != SPI_OK_SELECT) elog(ERROR, "config_guard.warm: reading the tenants failed");
    scope.Leave();
    SPITupleTable* rows = SPI_tuptable;
    const uint64 n = SPI_processed;
    Datum* batch = static_cast<Datum*>(palloc(sizeof(Datum) * kEnqueueBatch));
    int count = 0;
    for (uint64 i = 0; i < n; ++i) {
      CHECK_FOR_INTERRUPTS();
      bool isnull = false;
      const Datum value = SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull);
      const char* key = TenantKeyText(&def->tenant_key, value);
      if (strlen(key) > static_cast<size_t>(kMaxTenantKeyBytes)) continue;  // no get() could ask for it
      batch[count++] = CStringGetTextDatum(key);
      if (count == kEnqueueBatch) {
        queued += Enqueue(def->config_id, batch, count);
        count = 0;
      }
    }
    queued += Enqueue(def->config_id, batch, count);
    SPI_freetuptable(rows);
  }
  ReleaseConfig();
  SPI_finish();
  PG_RETURN_INT64(queued);
}

int64 EnqueueStale(int64 limit) {
  // Candidates first (a few times the limit: most stale documents are
  // unread), then those read within the window, config by config.
  const TimestampTz since = GetCurrentTimestamp() - static_cast<TimestampTz>(refresh_ahead_window_s) * USECS_PER_SEC;
  SPI_connect();
  Datum values[1] = {Int64GetDatum(limit * 8)};
  const uint64 n = RunAsOwner(Stmt::kStaleDocuments, values);
  SPITupleTable* rows = SPI_tuptable;
  int64 queued = 0;
  Datum* batch = static_cast<Datum*>(palloc(sizeof(Datum) * (n + 1)));
  int count = 0;
  int32 config_id = 0;
  for (uint64 i = 0; i <= n && queued < limit; ++i) {
    bool isnull = false;
    const int32 row_config = i < n ? DatumGetInt32(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull)) : 0;
    if (i == n || (count > 0 && row_config != config_id)) {
      queued += Enqueue(config_id, batch, count);
      count = 0;
      if (i == n) break;
    }
    config_id = row_config;
    const char* tenant = SPI_getvalue(rows->vals[i], rows->tupdesc, 2);
    if (ReadSince(config_id, TenantHash(tenant), since)) batch[count++] = CStringGetTextDatum(tenant);
  }
  SPI_finish();
  return queued;
}

bool BackgroundBuildRunning() { return background_build; }

// config_guard.read_since(config_id, tenant, since): whether a reader asked
// for the tenant at or after `since` (the eviction's filter; not for callers).
CG_FUNCTION(config_guard_read_since) {
  PG_RETURN_BOOL(
      ReadSince(PG_GETARG_INT32(0), TenantHash(text_to_cstring(PG_GETARG_TEXT_PP(1))), PG_GETARG_TIMESTAMPTZ(2)));
}

int64 EvictUnread(int64 limit) {
  if (evict_unread_after_s <= 0) return 0;
  Interval* age = static_cast<Interval*>(palloc0(sizeof(Interval)));
  age->time = static_cast<int64>(evict_unread_after_s) * USECS_PER_SEC;
  const TimestampTz since = GetCurrentTimestamp() - age->time;
  // A configs row an open transaction holds (an undefine) is waited for a
  // second at most: the cleanup of every database waits for this visit.
  const int guc_level = NewGUCNestLevel();
  set_config_option("lock_timeout", "1s", PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
  SPI_connect();
  Datum values[2] = {IntervalPGetDatum(age), Int64GetDatum(limit)};
  const uint64 n = RunAsOwner(Stmt::kUnreadCandidates, values);
  SPITupleTable* rows = SPI_tuptable;
  // Config by config, the candidates nobody read since (a slot shared with a
  // tenant that was read keeps both: the safe side).
  int32* configs = static_cast<int32*>(palloc(sizeof(int32) * (n + 1)));
  Datum* tenants = static_cast<Datum*>(palloc(sizeof(Datum) * (n + 1)));
  int count = 0;
  for (uint64 i = 0; i < n; ++i) {
    bool isnull = false;
    const int32 config_id = DatumGetInt32(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull));
    const char* tenant = SPI_getvalue(rows->vals[i], rows->tupdesc, 2);
    if (ReadSince(config_id, TenantHash(tenant), since)) continue;
    configs[count] = config_id;
    tenants[count++] = CStringGetTextDatum(tenant);
  }
  int64 evicted = 0;
  for (int start = 0; start < count;) {
    int end = start;
    while (end < count && configs[end] == configs[start]) ++end;
    Datum args[3] = {Int32GetDatum(configs[start]),
                     PointerGetDatum(construct_array(tenants + start, end - start, TEXTOID, -1, false, TYPALIGN_INT)),
                     IntervalPGetDatum(age)};
    RunAsOwner(Stmt::kEvict, args);
    bool isnull = false;
    evicted += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    start = end;
  }
  SPI_finish();
  AtEOXact_GUC(true, guc_level);
  return evicted;
}

namespace {

// The next queued tenant, taken off the queue in a transaction of its own
// (copied into `cxt`); false when the queue is empty.
bool TakeQueued(MemoryContext cxt, char** config, char** tenant) {
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  PushActiveSnapshot(GetTransactionSnapshot());
  SPI_connect();
  Datum values[1] = {Int64GetDatum(1)};
  const bool found = RunAsOwner(Stmt::kDequeue, values) > 0;
  if (found) {
    *config = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
    *tenant = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
  }
  SPI_finish();
  PopActiveSnapshot();
  CommitTransactionCommand();
  return found;
}

// The tenant as get() takes it: its key text, or for the types whose key is
// their image (date, timestamps, enums ...) the value's own text.
const char* TenantArgument(const char* config, const char* key) {
  ConfigDef* def = AcquireConfig(config);
  const char* text = key;
  if (!def->tenant_key.readable) {
    // "\x" and the image in hex
    const size_t hex = strlen(key) - 2;
    char* image = static_cast<char*>(palloc(hex / 2 + 1));
    hex_decode(key + 2, hex, image);
    const Datum value = ValueFromImage(def->tenant_key, image, static_cast<uint32>(hex / 2));
    text = OutputFunctionCall(&def->tenant_key.output, value);
  }
  ReleaseConfig();
  return text;
}

// One build, in a transaction of its own, as any reader would ask for it:
// get() coalesces with readers, keeps to the builder cap and the tenant's
// backoff, and stores the document. False (logged) if it failed. `outer`
// outlives the transaction: the error is copied there.
bool BuildOne(MemoryContext outer, const char* config, const char* tenant) {
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  PushActiveSnapshot(GetTransactionSnapshot());
  pgstat_report_activity(STATE_RUNNING, "config_guard background build");
  bool ok = true;
  PG_TRY();
  {
    background_build = true;
    SPI_connect();
    Oid types[2] = {TEXTOID, TEXTOID};
    Datum args[2] = {CStringGetTextDatum(config), CStringGetTextDatum(TenantArgument(config, tenant))};
    SPI_execute_with_args("SELECT config_guard.get($1, $2)", 2, types, args, nullptr, false, 1);
    SPI_finish();
    background_build = false;
    PopActiveSnapshot();
    CommitTransactionCommand();
  }
  PG_CATCH();
  {
    background_build = false;
    MemoryContextSwitchTo(outer);
    ErrorData* error = CopyErrorData();
    FlushErrorState();
    AbortCurrentTransaction();
    ereport(LOG, (errmsg("config_guard background build of config \"%s\" failed: %s", config, error->message)));
    FreeErrorData(error);
    ok = false;
  }
  PG_END_TRY();
  pgstat_report_activity(STATE_IDLE, nullptr);
  return ok;
}

}  // namespace

int64 RunQueuedBuilds(int64 max_builds, long budget_ms) {
  const TimestampTz start = GetCurrentTimestamp();
  MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "config_guard background builds", ALLOCSET_SMALL_SIZES);
  int64 built = 0;
  char* config = nullptr;
  char* tenant = nullptr;
  while (built < max_builds && !TimestampDifferenceExceeds(start, GetCurrentTimestamp(), budget_ms) &&
         TakeQueued(cxt, &config, &tenant)) {
    CHECK_FOR_INTERRUPTS();
    if (BuildOne(cxt, config, tenant)) ++built;
    MemoryContextReset(cxt);
  }
  MemoryContextDelete(cxt);
  return built;
}

}  // namespace config_guard

// The table of per-config shared entries (rules in core/config_slots.hpp).
//
// Locking. One LWLock (tranche "config_guard configs") protects the index
// (key -> slot), and the key, in_use and watches_overflow fields of every
// slot: look-ups take it shared, giving a slot to a config exclusive. The
// generation of a slot is written under the exclusive lock and read without
// it; anything that must land on the right config re-checks it under the
// shared lock (builder_slots.cpp, mark_writers.cpp), and a slot is reclaimed
// only when its running builders and mark writers are zero, under the
// exclusive lock. A slot's condition variable is initialised once, at
// startup, and never again: waiters may sleep on it across a reclaim, wake,
// and find the generation changed.
//
// Everything here is advisory state: a crash resets it with the rest of
// shared memory.
#include "config_entries.hpp"  // first: it includes the core headers

#include <type_traits>

#include "gateway.hpp"
#include "pg_compat.hpp"
#include "gucs.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/syscache.h"
}

namespace config_guard {
namespace {

static_assert(std::is_standard_layout_v<ConfigEntry>, "shared memory holds plain structs");
static_assert(std::is_trivially_destructible_v<ConfigEntry>, "shared memory holds plain structs");
static_assert(sizeof(ConfigSlotKey) == 8, "hash keys have no padding");

struct IndexEntry {
  ConfigSlotKey key;
  int32 slot;
};

struct Header {
  pg_atomic_uint64 next_generation;
  pg_atomic_uint32 overflow_used;
  pg_atomic_uint32 overflow_warned;
};

constexpr const char* kTranche = "config_guard configs";

// The configs each backend runs builders of on the overflow entry (a stack,
// as it takes and returns them). Written by the backend itself: pushed under
// the lock in shared mode, popped without it; read under the lock in
// exclusive mode, where a stale read only keeps a config on the overflow a
// moment longer.
constexpr int kOverflowBuildsPerBackend = 4;
struct OverflowBuilds {
  Oid dboid;
  int depth;  // may exceed kOverflowBuildsPerBackend: then only the first are known
  int32 config_ids[kOverflowBuildsPerBackend];
};

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;
LWLock* lock = nullptr;
Header* header = nullptr;
ConfigEntry* slots = nullptr;  // max_tracked_configs slots, then the overflow entry
HTAB* index = nullptr;
OverflowBuilds* overflow_builds = nullptr;  // one per process slot

int ProcessSlots() { return MaxBackends + NUM_AUXILIARY_PROCS; }
Size OverflowBuildsSize() { return mul_size(ProcessSlots(), sizeof(OverflowBuilds)); }

Size SlotsSize() { return mul_size(static_cast<Size>(max_tracked_configs) + 1, sizeof(ConfigEntry)); }

void ShmemRequest() {
  if (prev_shmem_request_hook) prev_shmem_request_hook();
  RequestAddinShmemSpace(add_size(
      add_size(add_size(hash_estimate_size(max_tracked_configs, sizeof(IndexEntry)), sizeof(Header)), SlotsSize()),
      OverflowBuildsSize()));
  RequestNamedLWLockTranche(kTranche, 1);
}

void ShmemStartup() {
  if (prev_shmem_startup_hook) prev_shmem_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  lock = &GetNamedLWLockTranche(kTranche)->lock;
  HASHCTL info = {};
  info.keysize = sizeof(ConfigSlotKey);
  info.entrysize = sizeof(IndexEntry);
  index = ShmemInitHash("config_guard config index", max_tracked_configs, max_tracked_configs, &info,
                        HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
  bool found = false;
  header = static_cast<Header*>(ShmemInitStruct("config_guard config header", sizeof(Header), &found));
  if (!found) {
    pg_atomic_init_u64(&header->next_generation, 1);
    pg_atomic_init_u32(&header->overflow_used, 0);
    pg_atomic_init_u32(&header->overflow_warned, 0);
  }
  overflow_builds =
      static_cast<OverflowBuilds*>(ShmemInitStruct("config_guard overflow builders", OverflowBuildsSize(), &found));
  if (!found) memset(overflow_builds, 0, OverflowBuildsSize());
  slots = static_cast<ConfigEntry*>(ShmemInitStruct("config_guard config slots", SlotsSize(), &found));
  if (!found) {
    const TimestampTz now = GetCurrentTimestamp();
    for (int i = 0; i <= max_tracked_configs; ++i) {
      ConfigEntry* e = &slots[i];
      e->key = {InvalidOid, 0};
      e->in_use = false;
      e->watches_overflow = false;
      pg_atomic_init_u64(&e->generation, 0);
      for (auto& v : e->events) pg_atomic_init_u64(&v, 0);
      SpinLockInit(&e->mutex);
      e->alarm = {};
      e->total_build_ms = e->max_build_ms = 0;
      e->builder_runs = 0;
      e->stats_reset = now;
      pg_atomic_init_u32(&e->running_builders, 0);
      ConditionVariableInit(&e->builder_cv);
      pg_atomic_init_u32(&e->marking, 0);
      pg_atomic_init_u64(&e->mark_epoch, 0);
    }
  }
  LWLockRelease(AddinShmemInitLock);
}

// This backend's references to its configs' own slots (never to the
// overflow entry: a config that shares it looks again at every use, so it
// moves to a slot of its own as soon as one is free).
HTAB* local_refs = nullptr;

struct LocalRef {
  int32 config_id;
  ConfigRef ref;
};

LocalRef* LocalRefFor(int32 config_id, bool create) {
  if (local_refs == nullptr) {
    HASHCTL ctl = {};
    ctl.keysize = sizeof(int32);
    ctl.entrysize = sizeof(LocalRef);
    local_refs = hash_create("config_guard config entries", 16, &ctl, HASH_ELEM | HASH_BLOBS);
  }
  bool found = false;
  auto* local = static_cast<LocalRef*>(hash_search(local_refs, &config_id, create ? HASH_ENTER : HASH_FIND, &found));
  if (create && !found) local->ref = {nullptr, 0, true, config_id};
  return local;
}

bool Contains(const int32* sorted, int n, int32 value) {
  int lo = 0;
  int hi = n;
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (sorted[mid] == value) return true;
    if (sorted[mid] < value)
      lo = mid + 1;
    else
      hi = mid;
  }
  return false;
}

int CompareInt32(const void* a, const void* b) {
  const int32 x = *static_cast<const int32*>(a);
  const int32 y = *static_cast<const int32*>(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

// Which configs are gone, as far as this backend can tell: the configs of
// its own database that `config_guard.configs` no longer lists, and every
// config of a database that no longer exists. Looked up when the table is
// full, at most once a second per backend (it runs a query), and used until
// the next look; a config defined since (a larger id) counts as live.
struct Liveness {
  TimestampTz looked_at = 0;
  int32* live_ids = nullptr;  // of this database, sorted
  int nlive = 0;
  int32 max_id = 0;
  Oid* dead_dbs = nullptr;
  int ndead = 0;

  bool Gone(const ConfigSlotKey& key) const {
    if (looked_at == 0) return false;
    if (key.dboid == MyDatabaseId) return key.config_id <= max_id && !Contains(live_ids, nlive, key.config_id);
    for (int i = 0; i < ndead; ++i) {
      if (dead_dbs[i] == key.dboid) return true;
    }
    return false;
  }
};
Liveness liveness;

// Looks again if the last look is more than a second old; false if not.
bool RefreshLiveness() {
  const TimestampTz now = GetCurrentTimestamp();
  if (liveness.looked_at != 0 && now - liveness.looked_at < USECS_PER_SEC) return false;

  Oid* dbs = static_cast<Oid*>(palloc(sizeof(Oid) * max_tracked_configs));
  int ndbs = 0;
  LWLockAcquire(lock, LW_SHARED);
  for (int i = 0; i < max_tracked_configs; ++i) {
    const ConfigEntry* e = &slots[i];
    if (e->in_use && e->key.dboid != MyDatabaseId) dbs[ndbs++] = e->key.dboid;
  }
  LWLockRelease(lock);
  // Built in the caller's memory, kept only once complete: a failed query
  // leaves nothing behind.
  MemoryContext caller_cxt = CurrentMemoryContext;
  Liveness fresh;
  Oid* dead = static_cast<Oid*>(palloc(sizeof(Oid) * (ndbs + 1)));
  for (int i = 0; i < ndbs; ++i) {
    if (!SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(dbs[i]))) dead[fresh.ndead++] = dbs[i];
  }
  pfree(dbs);

  SPI_connect();
  const uint64 n = RunAsOwner(Stmt::kConfigIds, nullptr);
  auto* live = static_cast<int32*>(MemoryContextAlloc(caller_cxt, sizeof(int32) * (n + 1)));
  for (uint64 i = 0; i < n; ++i) {
    bool isnull = false;
    const int32 id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
    live[i] = id;
    if (id > fresh.max_id) fresh.max_id = id;
  }
  fresh.nlive = static_cast<int>(n);
  SPI_finish();
  qsort(live, fresh.nlive, sizeof(int32), CompareInt32);
  fresh.live_ids = static_cast<int32*>(MemoryContextAlloc(TopMemoryContext, sizeof(int32) * (n + 1)));
  memcpy(fresh.live_ids, live, sizeof(int32) * n);
  fresh.dead_dbs = static_cast<Oid*>(MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * (ndbs + 1)));
  memcpy(fresh.dead_dbs, dead, sizeof(Oid) * fresh.ndead);
  pfree(live);
  pfree(dead);
  fresh.looked_at = now;
  if (liveness.live_ids != nullptr) pfree(liveness.live_ids);
  if (liveness.dead_dbs != nullptr) pfree(liveness.dead_dbs);
  liveness = fresh;
  return true;
}

// Whether a builder of `key` may be running on the overflow entry (under the
// lock): a backend running more overflow builders than it records may be
// running one.
bool BuildsOnOverflow(const ConfigSlotKey& key) {
  if (pg_atomic_read_u32(&OverflowEntry()->running_builders) == 0) return false;
  for (int p = 0; p < ProcessSlots(); ++p) {
    const OverflowBuilds& b = overflow_builds[p];
    if (b.depth == 0 || b.dboid != key.dboid) continue;
    if (b.depth > kOverflowBuildsPerBackend) return true;
    for (int i = 0; i < b.depth; ++i) {
      if (b.config_ids[i] == key.config_id) return true;
    }
  }
  return false;
}

// Gives a slot to `key` (under the exclusive lock); -1 when none can be had.
int TakeSlot(const ConfigSlotKey& key) {
  auto* views = static_cast<core::SlotView*>(palloc(sizeof(core::SlotView) * max_tracked_configs));
  for (int i = 0; i < max_tracked_configs; ++i) {
    ConfigEntry* e = &slots[i];
    views[i] = {e->in_use, pg_atomic_read_u32(&e->running_builders) != 0 || pg_atomic_read_u32(&e->marking) != 0,
                e->in_use && liveness.Gone(e->key)};
  }
  // A config whose builders run on the overflow entry takes a slot of its own
  // only when they are done, so that its cap holds across the move.
  const bool may_leave_overflow = !BuildsOnOverflow(key);
  const int i = core::PickSlot(views, max_tracked_configs, may_leave_overflow);
  pfree(views);
  if (i < 0) return -1;
  ConfigEntry* e = &slots[i];
  if (e->in_use) hash_search(index, &e->key, HASH_REMOVE, nullptr);
  e->key = key;
  e->in_use = true;
  e->watches_overflow = pg_atomic_read_u32(&header->overflow_used) != 0;
  pg_atomic_write_u64(&e->generation, pg_atomic_fetch_add_u64(&header->next_generation, 1));
  ResetEntryStatistics(e, GetCurrentTimestamp());
  SpinLockAcquire(&e->mutex);
  e->alarm = {};
  SpinLockRelease(&e->mutex);
  bool found = false;
  auto* entry = static_cast<IndexEntry*>(hash_search(index, &key, HASH_ENTER, &found));
  entry->slot = i;
  return i;
}

ConfigRef Find(const ConfigSlotKey& key) {
  LWLockAcquire(lock, LW_SHARED);
  auto* entry = static_cast<IndexEntry*>(hash_search(index, &key, HASH_FIND, nullptr));
  ConfigRef ref = {nullptr, 0, false, key.config_id};
  if (entry != nullptr)
    ref = {&slots[entry->slot], pg_atomic_read_u64(&slots[entry->slot].generation), false, key.config_id};
  LWLockRelease(lock);
  return ref;
}

ConfigRef Create(const ConfigSlotKey& key) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    LWLockAcquire(lock, LW_EXCLUSIVE);
    auto* entry = static_cast<IndexEntry*>(hash_search(index, &key, HASH_FIND, nullptr));
    const int i = entry != nullptr ? entry->slot : TakeSlot(key);
    const ConfigRef ref = i < 0 ? ConfigRef{nullptr, 0, true, key.config_id}
                                : ConfigRef{&slots[i], pg_atomic_read_u64(&slots[i].generation), false, key.config_id};
    if (i < 0) pg_atomic_write_u32(&header->overflow_used, 1);  // before any config can use the overflow
    LWLockRelease(lock);
    if (i >= 0) return ref;
    if (attempt > 0 || !RefreshLiveness()) break;
  }
  if (pg_atomic_exchange_u32(&header->overflow_warned, 1) == 0)
    ereport(WARNING, (errmsg("config_guard.max_tracked_configs (%d) is reached", max_tracked_configs),
                      errdetail("Further configs share one entry: their protections hold (one builder cap, marks "
                                "always probed), their statistics are not kept."),
                      errhint("Raise config_guard.max_tracked_configs and restart.")));
  return {OverflowEntry(), 0, true, key.config_id};
}

}  // namespace

void InitConfigEntries() {
  prev_shmem_request_hook = shmem_request_hook;
  shmem_request_hook = ShmemRequest;
  prev_shmem_startup_hook = shmem_startup_hook;
  shmem_startup_hook = ShmemStartup;
}

LWLock* ConfigEntriesLock() { return lock; }
ConfigEntry* OverflowEntry() { return &slots[max_tracked_configs]; }
ConfigEntry* ConfigEntryAt(int i) { return &slots[i]; }
int ConfigEntryCount() { return max_tracked_configs; }

bool StillCurrent(const ConfigRef& ref) {
  if (!ref.overflow) return pg_atomic_read_u64(&ref.entry->generation) == ref.generation;
  const ConfigSlotKey key = {MyDatabaseId, ref.config_id};
  return hash_search(index, &key, HASH_FIND, nullptr) == nullptr;  // no slot of its own yet
}

ConfigRef FindConfigEntry(int32 config_id) {
  LocalRef* local = LocalRefFor(config_id, true);
  if (local->ref.entry != nullptr && StillCurrent(local->ref)) return local->ref;
  const ConfigSlotKey key = {MyDatabaseId, config_id};
  ConfigRef ref = Find(key);
  if (ref.entry == nullptr) ref = Create(key);
  local->ref = ref.overflow ? ConfigRef{nullptr, 0, true, config_id} : ref;
  return ref;
}

ConfigEntry* RestoreConfigEntry(const ConfigSlotKey& key) {
  for (int i = 0; i < max_tracked_configs; ++i) {
    ConfigEntry* e = &slots[i];
    if (e->in_use) continue;
    bool found = false;
    auto* entry = static_cast<IndexEntry*>(hash_search(index, &key, HASH_ENTER_NULL, &found));
    if (entry == nullptr || found) return nullptr;
    entry->slot = i;
    e->key = key;
    e->in_use = true;
    e->watches_overflow = false;
    pg_atomic_write_u64(&e->generation, pg_atomic_fetch_add_u64(&header->next_generation, 1));
    return e;
  }
  return nullptr;
}

void NoteOverflowBuild(int32 config_id) {
  OverflowBuilds& mine = overflow_builds[compat::ProcNumberOf(MyProc)];
  mine.dboid = MyDatabaseId;
  if (mine.depth < kOverflowBuildsPerBackend) mine.config_ids[mine.depth] = config_id;
  mine.depth++;
}

void EndOverflowBuild() {
  OverflowBuilds& mine = overflow_builds[compat::ProcNumberOf(MyProc)];
  if (mine.depth > 0) mine.depth--;
}

void ResetEntryStatistics(ConfigEntry* e, TimestampTz now) {
  for (auto& v : e->events) pg_atomic_write_u64(&v, 0);
  SpinLockAcquire(&e->mutex);
  e->total_build_ms = 0;
  e->max_build_ms = 0;
  e->builder_runs = 0;
  e->stats_reset = now;
  SpinLockRelease(&e->mutex);
}

}  // namespace config_guard

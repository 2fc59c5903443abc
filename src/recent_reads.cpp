#include "recent_reads.hpp"

extern "C" {
#include "miscadmin.h"
#include "access/xact.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"
}

namespace config_guard {
namespace {

constexpr uint32 kSlots = 1u << 16;  // 512 KB
constexpr TimestampTz kResolution = USECS_PER_SEC;

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;
pg_atomic_uint64* slots = nullptr;

void ShmemRequest() {
  if (prev_shmem_request_hook) prev_shmem_request_hook();
  RequestAddinShmemSpace(sizeof(pg_atomic_uint64) * kSlots);
}

void ShmemStartup() {
  if (prev_shmem_startup_hook) prev_shmem_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found = false;
  slots = static_cast<pg_atomic_uint64*>(
      ShmemInitStruct("config_guard recent reads", sizeof(pg_atomic_uint64) * kSlots, &found));
  if (!found) {
    for (uint32 i = 0; i < kSlots; ++i) pg_atomic_init_u64(&slots[i], 0);
  }
  LWLockRelease(AddinShmemInitLock);
}

pg_atomic_uint64* SlotOf(int32 config_id, uint64 tenant_hash) {
  uint64 h = tenant_hash ^ (static_cast<uint64>(MyDatabaseId) << 32) ^ static_cast<uint32>(config_id);
  h ^= h >> 33;
  h *= UINT64CONST(0xff51afd7ed558ccd);
  h ^= h >> 33;
  return &slots[h % kSlots];
}

}  // namespace

void InitRecentReads() {
  prev_shmem_request_hook = shmem_request_hook;
  shmem_request_hook = ShmemRequest;
  prev_shmem_startup_hook = shmem_startup_hook;
  shmem_startup_hook = ShmemStartup;
}

void NoteRead(int32 config_id, uint64 tenant_hash) {
  if (slots == nullptr) return;
  pg_atomic_uint64* slot = SlotOf(config_id, tenant_hash);
  const TimestampTz now = GetCurrentStatementStartTimestamp();
  if (now - static_cast<TimestampTz>(pg_atomic_read_u64(slot)) >= kResolution)
    pg_atomic_write_u64(slot, static_cast<uint64>(now));
}

bool ReadSince(int32 config_id, uint64 tenant_hash, TimestampTz since) {
  if (slots == nullptr) return false;
  return static_cast<TimestampTz>(pg_atomic_read_u64(SlotOf(config_id, tenant_hash))) >= since - kResolution;
}

}  // namespace config_guard

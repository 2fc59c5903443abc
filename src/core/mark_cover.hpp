// When a write may go without its invalidation mark.
//
// A tenant's stored document is stale as soon as one committed mark exists
// that its build did not see. Once such a mark is in, a later write of the
// tenant adds nothing a reader needs, as long as no build has folded that
// mark since: the write is "covered". Covering is kept per bucket of keys in
// shared memory (mark_skip.hpp has the whole argument):
//
// - a durable mark, at its transaction's commit, covers its key if no build
//   of the bucket ran at any time since the mark was written (`seq`
//   unchanged, no build in progress) and no bulk deletion of marks did either
//   (the global epoch unchanged, none in progress);
// - a committing writer of a covered key registers as a skipper of that key
//   until its commit is visible, and writes no mark;
// - a build that will store what it reads fences the bucket before its
//   snapshot (covering ends, and it waits for the skippers of its key
//   registered before) and again when it ends.
//
// A key is the whole identity (database, config, and a 128-bit keyed digest
// of the tenant): tenants never share a covering, whatever their names.
//
// Pure C++: no Postgres header may be included before this file.
#pragma once
#ifdef PG_VERSION_NUM
#error "src/core is Postgres-free: include core headers before postgres.h"
#endif

#include <cstdint>

namespace config_guard::core {

struct CoverKey {
  std::uint32_t database = 0;
  std::uint32_t marks_table = 0;  // a dropped and re-created extension starts anew
  std::int32_t config = 0;
  std::uint64_t digest[2] = {0, 0};
  bool operator==(const CoverKey& o) const {
    return database == o.database && marks_table == o.marks_table && config == o.config && digest[0] == o.digest[0] &&
           digest[1] == o.digest[1];
  }
};

struct CoverBucket {
  // Keys covered, each with the global epoch it was covered under; a few,
  // so that tenants sharing the bucket do not take turns.
  static constexpr int kKeys = 4;
  struct Covered {
    bool valid = false;
    CoverKey key;
    std::uint64_t epoch = 0;
  };
  // Writers committing without a mark, per key.
  struct Skippers {
    std::uint32_t count = 0;
    CoverKey key;
  };
  Covered covered[kKeys];
  std::uint32_t next = 0;  // the slot a new key replaces when all are taken
  Skippers skippers[kKeys];
  std::uint64_t seq = 0;       // moved by every fence
  std::uint32_t builders = 0;  // builds between their two fences
  // The transaction ids (64-bit) of the bucket's last skippers that
  // committed, and the newest of those pushed out (0: none).
  struct Skip {
    std::uint64_t xid = 0;
    std::uint64_t key_word = 0;  // the key's first digest word
  };
  static constexpr int kRecent = 8;
  Skip recent_skips[kRecent];
  std::uint32_t recent_next = 0;
  std::uint64_t older_skips_below = 0;
};

// Whether a writer of `key` may skip its mark, the global epoch being
// `epoch`; if so it is counted as a skipper of the key (false when the
// bucket has no room to count it).
inline bool TrySkip(CoverBucket* b, const CoverKey& key, std::uint64_t epoch) {
  if (b->builders != 0) return false;
  bool covered = false;
  for (const CoverBucket::Covered& c : b->covered) covered |= c.valid && c.key == key && c.epoch == epoch;
  if (!covered) return false;
  CoverBucket::Skippers* slot = nullptr;
  for (CoverBucket::Skippers& s : b->skippers) {
    if (s.count > 0 && s.key == key) slot = &s;
  }
  for (CoverBucket::Skippers& s : b->skippers) {
    if (slot == nullptr && s.count == 0) slot = &s;
  }
  if (slot == nullptr) return false;
  slot->key = key;
  ++slot->count;
  return true;
}

// A skipper's transaction ended.
inline void EndSkip(CoverBucket* b, const CoverKey& key) {
  for (CoverBucket::Skippers& s : b->skippers) {
    if (s.count > 0 && s.key == key) {
      --s.count;
      return;
    }
  }
}

// A skipper committed: remembered among the recent ones.
inline void RememberSkip(CoverBucket* b, const CoverKey& key, std::uint64_t xid) {
  CoverBucket::Skip& slot = b->recent_skips[b->recent_next];
  if (slot.xid > b->older_skips_below) b->older_skips_below = slot.xid;
  slot.xid = xid;
  slot.key_word = key.digest[0];
  b->recent_next = (b->recent_next + 1) % CoverBucket::kRecent;
}

// Skippers of `key` in progress.
inline std::uint32_t SkippersOf(const CoverBucket& b, const CoverKey& key) {
  for (const CoverBucket::Skippers& s : b.skippers) {
    if (s.count > 0 && s.key == key) return s.count;
  }
  return 0;
}

// At the commit of a durable mark of `key`, written when the bucket's
// sequence was `seq_at_write` and the global epoch `epoch_at_write`: covers
// the key if nothing moved since and nothing is moving (`bulk`: bulk
// deletions in progress). Returns whether it does.
inline bool CoverAtCommit(CoverBucket* b, const CoverKey& key, std::uint64_t seq_at_write, std::uint64_t epoch_at_write,
                          std::uint64_t epoch_now, std::uint32_t bulk) {
  if (b->seq != seq_at_write || epoch_at_write != epoch_now || b->builders != 0 || bulk != 0) return false;
  CoverBucket::Covered* slot = nullptr;
  for (CoverBucket::Covered& c : b->covered) {
    if (c.valid && c.key == key) slot = &c;
  }
  for (CoverBucket::Covered& c : b->covered) {
    if (slot == nullptr && !c.valid) slot = &c;
  }
  if (slot == nullptr) {
    slot = &b->covered[b->next];
    b->next = (b->next + 1) % CoverBucket::kKeys;
  }
  slot->valid = true;
  slot->key = key;
  slot->epoch = epoch_now;
  return true;
}

// A build's fence before its snapshot, and at its end: the whole bucket.
inline void StartBuild(CoverBucket* b) {
  ++b->seq;
  ++b->builders;
  for (CoverBucket::Covered& c : b->covered) c.valid = false;
}
inline void EndBuild(CoverBucket* b) {
  ++b->seq;
  if (b->builders > 0) --b->builders;
  for (CoverBucket::Covered& c : b->covered) c.valid = false;
}

}  // namespace config_guard::core

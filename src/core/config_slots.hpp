// Rules of the fixed-size table of per-config state in shared memory.
//
// The table has a fixed number of slots. A config takes a free slot on first
// use; when none is free, it takes the slot of a config that no longer exists
// (undefined, its extension or its database dropped) provided nothing is in
// progress on it; when no slot can be taken it shares one overflow entry.
// Protections never depend on having a slot of one's own: the overflow entry
// caps its builders together, and its readers always probe the marks.
//
// A slot given to another config changes generation: references held by
// backends carry the generation they saw and are looked up again when it
// changed. Once the overflow entry has been used, a config's writers and
// readers may for a while sit on different entries (one looked up while the
// table was full, the other after a slot was freed), so every slot taken from
// then on is "watching the overflow": its readers also require the overflow
// entry to be quiet and count its epoch.
//
// Pure C++: no Postgres header may be included before this file.
#pragma once
#ifdef PG_VERSION_NUM
#error "src/core is Postgres-free: include core headers before postgres.h"
#endif

#include <cstdint>

namespace config_guard::core {

struct SlotView {
  bool in_use;      // holds a config
  bool busy;        // builders running or mark writers in progress
  bool owner_gone;  // its config no longer exists
};

// The slot a new config takes: the first free one, else the first that is in
// use by a config that is gone and not busy; -1 when none (share the overflow).
// A config may have builders running on the overflow entry, unknown to a slot
// of its own: while any of its builders runs there (`may_leave_overflow`
// false), it takes no slot, so that its builders never exceed its cap.
int PickSlot(const SlotView* slots, int n, bool may_leave_overflow);

// What a reader of the marks compares between two looks.
struct MarkReading {
  bool quiet;           // no mark writer in progress
  std::uint64_t epoch;  // grows whenever a mark writer ends
};

// The reading of a slot: its own count and epoch, and the overflow entry's
// when it watches the overflow. The sum of two counters that only grow grows
// when either does.
MarkReading ReadMarks(std::uint32_t marking, std::uint64_t epoch, bool watches_overflow, std::uint32_t overflow_marking,
                      std::uint64_t overflow_epoch);

}  // namespace config_guard::core

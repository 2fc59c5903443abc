// The builder slots one backend holds, as a stack: builders nest (a builder
// may call get() for another tenant or config), and an error caught by an
// exception block unwinds some of them without their release running. Each
// slot remembers the subtransaction it was taken in, so that the abort of a
// subtransaction returns exactly the slots taken inside it, and the end of
// the transaction returns the rest.
//
// Pure C++: no Postgres header may be included before this file.
#pragma once
#ifdef PG_VERSION_NUM
#error "src/core is Postgres-free: include core headers before postgres.h"
#endif

#include <cstddef>
#include <cstdint>

namespace config_guard::core {

class SlotLedger {
 public:
  // Deeper nesting than this is refused: no builder calls get() 32 deep.
  static constexpr std::size_t kCapacity = 32;

  // Records a slot taken in subtransaction `subxact`; false when full.
  bool Push(std::uintptr_t slot, std::uint32_t subxact);
  // The innermost slot, removed; false when none is held.
  bool Pop(std::uintptr_t* slot);
  // Removes the slots taken in `subxact` or in the subtransactions started
  // after it (their ids are larger), writing them to `out` (kCapacity room);
  // returns how many.
  std::size_t ReleaseFrom(std::uint32_t subxact, std::uintptr_t* out);
  // Removes every slot, as ReleaseFrom(0).
  std::size_t ReleaseAll(std::uintptr_t* out);
  // Whether a slot of `slot`'s kind is held already: a build nested in one
  // that holds it (a builder calling get()) takes the next one without
  // waiting, since the outer build waits for it and adds no concurrency.
  bool Holds(std::uintptr_t slot) const;
  std::size_t size() const { return size_; }

 private:
  struct Entry {
    std::uintptr_t slot;
    std::uint32_t subxact;
  };
  Entry entries_[kCapacity] = {};
  std::size_t size_ = 0;
};

}  // namespace config_guard::core

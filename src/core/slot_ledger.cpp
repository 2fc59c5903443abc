#include "core/slot_ledger.hpp"

namespace config_guard::core {

bool SlotLedger::Push(std::uintptr_t slot, std::uint32_t subxact) {
  if (size_ == kCapacity) return false;
  entries_[size_++] = {slot, subxact};
  return true;
}

bool SlotLedger::Holds(std::uintptr_t slot) const {
  for (std::size_t i = 0; i < size_; ++i) {
    if (entries_[i].slot == slot) return true;
  }
  return false;
}

bool SlotLedger::Pop(std::uintptr_t* slot) {
  if (size_ == 0) return false;
  *slot = entries_[--size_].slot;
  return true;
}

std::size_t SlotLedger::ReleaseFrom(std::uint32_t subxact, std::uintptr_t* out) {
  // Slots are pushed in the order their subtransactions started, so the ones
  // to release are a suffix of the stack.
  std::size_t n = 0;
  while (size_ > 0 && entries_[size_ - 1].subxact >= subxact) out[n++] = entries_[--size_].slot;
  return n;
}

std::size_t SlotLedger::ReleaseAll(std::uintptr_t* out) { return ReleaseFrom(0, out); }

}  // namespace config_guard::core

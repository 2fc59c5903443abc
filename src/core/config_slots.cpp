#include "core/config_slots.hpp"

namespace config_guard::core {

int PickSlot(const SlotView* slots, int n, bool may_leave_overflow) {
  if (!may_leave_overflow) return -1;
  for (int i = 0; i < n; ++i) {
    if (!slots[i].in_use) return i;
  }
  for (int i = 0; i < n; ++i) {
    if (slots[i].owner_gone && !slots[i].busy) return i;
  }
  return -1;
}

MarkReading ReadMarks(std::uint32_t marking, std::uint64_t epoch, bool watches_overflow, std::uint32_t overflow_marking,
                      std::uint64_t overflow_epoch) {
  if (!watches_overflow) return {marking == 0, epoch};
  return {marking == 0 && overflow_marking == 0, epoch + overflow_epoch};
}

}  // namespace config_guard::core

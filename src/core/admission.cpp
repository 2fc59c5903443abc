#include "core/admission.hpp"

namespace config_guard::core {

Admission AdmitNewcomer(int active, int max_active, int queued, int max_queued) {
  if (queued == 0 && active < max_active) return Admission::kRun;
  if (queued < max_queued) return Admission::kQueue;
  return Admission::kRefuse;
}

bool MayLeaveQueue(int active, int max_active, bool is_oldest_waiter) {
  return is_oldest_waiter && active < max_active;
}

}  // namespace config_guard::core

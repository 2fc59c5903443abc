#include "subtransaction.hpp"

extern "C" {
#include "access/xact.h"
#include "utils/resowner.h"
}

namespace config_guard {

ErrorData* RunInSubtransaction(void (*fn)(void*), void* arg) {
  MemoryContext caller_cxt = CurrentMemoryContext;
  ResourceOwner caller_owner = CurrentResourceOwner;
  ErrorData* volatile error = nullptr;
  BeginInternalSubTransaction(nullptr);
  MemoryContextSwitchTo(caller_cxt);
  PG_TRY();
  {
    fn(arg);
    ReleaseCurrentSubTransaction();
  }
  PG_CATCH();
  {
    MemoryContextSwitchTo(caller_cxt);
    error = CopyErrorData();
    FlushErrorState();
    RollbackAndReleaseCurrentSubTransaction();
  }
  PG_END_TRY();
  MemoryContextSwitchTo(caller_cxt);
  CurrentResourceOwner = caller_owner;
  return error;
}

}  // namespace config_guard

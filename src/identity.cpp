#include "identity.hpp"

extern "C" {
#include "utils/guc.h"
}

namespace config_guard {

IdentityScope::IdentityScope(Oid role, bool forget_session_settings) {
  GetUserIdAndSecContext(&saved_user_, &saved_context_);
  SetUserIdAndSecContext(role, saved_context_ | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
  guc_level_ = NewGUCNestLevel();
  // RESET ALL, stacked at this nest level like any SET inside it.
  if (forget_session_settings) ResetAllOptions();
}

void IdentityScope::Pin(const char* name, const char* value) {
  set_config_option(name, value, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

void IdentityScope::Leave() {
  AtEOXact_GUC(false, guc_level_);
  SetUserIdAndSecContext(saved_user_, saved_context_);
}

}  // namespace config_guard

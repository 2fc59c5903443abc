#include "identity.hpp"

#include "pg_compat.hpp"

extern "C" {
#include "nodes/pg_list.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
}

namespace config_guard {
namespace {

struct PinnedSetting {
  const char* name;
  const char* value;
};

// What the output of a config owner's code (a builder, a cast to json) may
// depend on besides its data, or what would make it fail for one caller and
// so put the tenant into backoff for everyone: a reader must not be able to
// shape the shared document, or break it, with its own settings.
constexpr PinnedSetting kPinned[] = {
    // how values become text
    {"TimeZone", "UTC"},
    {"DateStyle", "ISO, MDY"},
    {"IntervalStyle", "postgres"},
    {"extra_float_digits", "1"},
    {"bytea_output", "hex"},
    {"xmlbinary", "base64"},
    {"xmloption", "content"},
    {"lc_monetary", "C"},
    {"lc_numeric", "C"},
    {"lc_time", "C"},
    // how the builder's SQL reads
    {"standard_conforming_strings", "on"},
    {"array_nulls", "on"},
    {"transform_null_equals", "off"},
    {"quote_all_identifiers", "off"},
    {"timezone_abbreviations", "Default"},
    // what its queries return, or whether they run at all
    {"row_security", "on"},
    {"gin_fuzzy_search_limit", "0"},
    {"lock_timeout", "0"},
};

// PL/pgSQL's own settings that any role may change, pinned when the session
// has them (loaded, or set before loading): they decide whether a PL/pgSQL
// builder runs. (plpgsql.variable_conflict is superuser-only.)
constexpr PinnedSetting kPinnedIfPresent[] = {
    {"plpgsql.extra_errors", "none"},
    {"plpgsql.extra_warnings", "none"},
    {"plpgsql.check_asserts", "on"},
};

}  // namespace

IdentityScope::IdentityScope(Oid role, bool forget_session_settings) {
  GetUserIdAndSecContext(&saved_user_, &saved_context_);
  SetUserIdAndSecContext(role, saved_context_ | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
  guc_level_ = NewGUCNestLevel();
  if (!forget_session_settings) return;
  // RESET ALL, stacked at this nest level like any SET inside it. Custom
  // settings (app.* and the like, which often carry request context) may
  // have come from the connection or the caller's role rather than a SET:
  // those read as empty.
  ResetAllOptions();
  int n = 0;
  struct config_generic** variables = compat::GucVariables(&n);
  List* custom = NIL;
  for (int i = 0; i < n; ++i) {
    if ((variables[i]->flags & GUC_CUSTOM_PLACEHOLDER) != 0) custom = lappend(custom, pstrdup(variables[i]->name));
  }
  ListCell* lc;
  foreach (lc, custom) Pin(static_cast<const char*>(lfirst(lc)), "");
}

IdentityScope::IdentityScope(Oid role, int extra_context) {
  GetUserIdAndSecContext(&saved_user_, &saved_context_);
  SetUserIdAndSecContext(role,
                         saved_context_ | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION | extra_context);
  guc_level_ = NewGUCNestLevel();
}

IdentityScope IdentityScope::AsTableOwner(Oid owner) {
  IdentityScope scope(owner, SECURITY_NOFORCE_RLS);
  scope.Pin("search_path", kSafeSearchPath);
  return scope;
}

void IdentityScope::PinDeterministicOutput() {
  for (const PinnedSetting& s : kPinned) Pin(s.name, s.value);
  for (const PinnedSetting& s : kPinnedIfPresent) {
    if (GetConfigOption(s.name, true, false) != nullptr) Pin(s.name, s.value);
  }
}

void IdentityScope::Pin(const char* name, const char* value) {
  set_config_option(name, value, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

void IdentityScope::Leave() {
  AtEOXact_GUC(false, guc_level_);
  SetUserIdAndSecContext(saved_user_, saved_context_);
}

}  // namespace config_guard

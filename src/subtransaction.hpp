// Running a piece of work in an internal subtransaction and catching its
// error: the one place config_guard uses PG_TRY, so that the save-and-restore
// of memory context and resource owner is written once.
#pragma once

#include "pg.hpp"

namespace config_guard {

// Runs fn(arg). Returns nullptr if it succeeded (the subtransaction is then
// committed into the caller's), else its error, copied into the caller's
// memory context after the subtransaction was rolled back. Either way the
// caller's memory context and resource owner are current again.
ErrorData* RunInSubtransaction(void (*fn)(void*), void* arg);

}  // namespace config_guard

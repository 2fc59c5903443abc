// Invalidation: statement triggers on every source mark, inside the writing
// transaction, exactly the tenants a statement touched, by appending to
// config_guard.invalidations. Appends never conflict, so writers of one
// tenant never wait for each other; a rollback takes its marks with it.
#pragma once

#include "pg.hpp"

namespace config_guard {

// Creates the INSERT, UPDATE, DELETE and TRUNCATE triggers of a config on one
// source (as the caller, who must be allowed to create triggers on it).
void InstallTriggers(int32 config_id, Oid source, const char* tenant_column);
// Drops them if the source and the triggers still exist.
void DropTriggers(int32 config_id, Oid source);

}  // namespace config_guard

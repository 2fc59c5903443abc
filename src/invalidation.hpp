// Invalidation: statement triggers on every source mark, inside the writing
// transaction, exactly the tenants a statement touched, by appending to
// config_guard.invalidations. Appends never conflict, so writers of one
// tenant never wait for each other; a rollback takes its marks with it.
//
// The trigger function trusts nothing it is given: it acts only when it fires
// through a trigger config_guard installed on a registered source of the
// config it names. Tenant keys are computed in C by the tenant type's own
// output function, as the writing user; only the finished text keys cross
// into the gateway.
#pragma once

#include "pg.hpp"

namespace config_guard {

// Creates the INSERT, UPDATE, DELETE and TRUNCATE triggers of a config on a
// relation and on each of its partitions and inheritance children, at any
// depth. Only config_guard attaches its trigger function (EXECUTE on it is
// revoked from PUBLIC), so they are created as the extension's owner; the
// caller has checked what it may.
// A foreign, unlogged or temporary table among them is refused, or with
// `warn_only` (install_triggers() of a config made before 0.4) skipped with a
// WARNING.
// The triggers of one table made again with these arguments.
void ReinstallTriggersOn(int32 config_id, Oid relid, const char* tenant_column, const char* via);

// (`via`: for a child source, the name of its foreign key to its parent.)
void InstallTriggers(int32 config_id, Oid relid, const char* tenant_column, bool warn_only = false,
                     const char* via = nullptr);
// Drops them, from the relation and its descendants, where they exist.
void DropTriggers(int32 config_id, Oid relid);
// Drops them from the one relation, if they exist.
void DropTriggersOn(int32 config_id, Oid relid);

// True while config_guard itself creates or drops invalidation triggers
// (define, undefine, install_triggers): dependencies.cpp refuses everyone
// else's drop, rename or disabling of them.
bool InternalTriggerDdl();

// True for the name of a config's row trigger for the logical replication
// apply worker (config_guard_<id>_replica).
bool IsReplicaTriggerName(const char* name);
// Puts a config's trigger of `relid` back in the mode config_guard gave it:
// replica for the row trigger, ALWAYS for the statement triggers.
void RestoreTriggerMode(Oid relid, const char* name);

// Marks every tenant of the config stale, in the current transaction: for
// changes no trigger sees (DDL that rewrites or reinterprets a source's rows).
// The caller is connected to SPI.
void InvalidateConfig(int32 config_id);

}  // namespace config_guard

// Running SQL on the extension's own tables as their owner.
//
// Callers cannot write (and mostly cannot read) the extension's tables. Entry
// points check the caller's rights themselves, then run their fixed, fully
// qualified queries as the tables' owner with SECURITY_RESTRICTED_OPERATION,
// the way REFRESH MATERIALIZED VIEW switches user. If a query fails, the
// (sub)transaction abort restores the user.
#pragma once

#include "pg.hpp"

extern "C" {
#include "executor/spi.h"
}

namespace config_guard {

// Owner of the extension's tables (cached until the registry is invalidated).
Oid ExtensionOwner();
void ForgetExtensionOwner();

// SPI_execute_with_args as `role`; raises unless the result code is `expected`.
void ExecuteAs(Oid role, const char* sql, int nargs, Oid* types, Datum* values, const char* nulls, int expected);
// SPI_execute_plan as `role`, with the same check.
void ExecutePlanAs(Oid role, SPIPlanPtr plan, Datum* values, const char* nulls, bool read_only, int expected);

// A plan prepared once per backend and kept (for fixed queries on our tables).
SPIPlanPtr KeptPlan(SPIPlanPtr* slot, const char* sql, int nargs, Oid* types);

}  // namespace config_guard

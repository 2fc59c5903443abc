// The one place Postgres headers enter C++. Core headers (src/core) must be
// included before this file: they refuse to compile once postgres.h is in.
//
// Error model: Postgres-facing code is built with -fno-exceptions -fno-rtti and
// reports every error with ereport(), which longjmps. Nothing here owns a
// resource released by a destructor: memory comes from palloc contexts, and
// locks and slots are released by Postgres' abort paths and callbacks, so a
// longjmp that skips destructors leaks nothing.
#pragma once

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

// 15, 17 and 18 are built and tested (make test-matrix); their differences
// are in pg_compat.hpp.
#if PG_VERSION_NUM < 150000 || PG_VERSION_NUM >= 190000
#error "config_guard supports PostgreSQL 15 to 18"
#endif

// Declares a SQL-callable C function with C linkage.
#define CG_FUNCTION(name)                   \
  extern "C" {                              \
  PGDLLEXPORT Datum name(PG_FUNCTION_ARGS); \
  PG_FUNCTION_INFO_V1(name);                \
  }                                         \
  Datum name(PG_FUNCTION_ARGS)

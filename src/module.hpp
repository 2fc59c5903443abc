// Module-wide state and the Init*() functions _PG_init calls.
#pragma once

#include "pg.hpp"

namespace config_guard {

// True when the library was loaded by shared_preload_libraries.
extern bool loaded_at_startup;

// Every SQL entry point calls this first: without preloading there is no
// shared state, so functions refuse with 55000 and say how to fix it.
void RequirePreloaded();

void InitGucs();
void InitRegistryCache();
void InitDependencies();
void InitInvalidation();
void InitCursorSecret();
// Reads the server's settings a builder runs with (builder.cpp).
void InitBuilder();

}  // namespace config_guard

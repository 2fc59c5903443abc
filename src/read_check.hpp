// What a builder reads, checked while it runs: every relation its statements
// read (the executor's permission check sees each range table) must be one
// the config's invalidation triggers cover, a source or a shared source or a
// partition or child of one, or the build fails (55000) naming it. A builder
// can therefore never be stale because it read something nobody watches.
// config_guard's own statements inside a build are not the builder's.
//
// A builder that calls get() or export_page() of another config reads that
// config's sources through it: they must be covered by its own config too.
// (get() inside a builder runs the other builder itself, never the cache: its
// stored, last good or max_stale answer could be older than what this
// builder's document claims to be.)
//
// A builder that catches the error still fails its build.
#pragma once

#include "registry.hpp"

namespace config_guard {

void InitReadCheck();

// 55000 if a builder is running and `inner` (a config it asks for) has a
// source its own config does not cover.
void CheckNestedConfig(const ConfigDef& inner);

// The 55000 of a builder of `def` that read `relid`.
[[noreturn]] void RefuseRead(const ConfigDef& def, Oid relid);

}  // namespace config_guard

// Invalidation-mark writers of a config, counted in its shared entry so that
// a reader can skip probing the marks while nothing changed (cache.cpp).
//
// A transaction that writes marks calls NoteMarkWriter() before its first
// mark; EndMarkWriters() runs when it ends. ReadMarkEpoch() tells a reader
// whether no such transaction is in progress (quiet) and a value that changes
// whenever one ends or the config's entry changes (epoch, generation).
#pragma once

#include "pg.hpp"

namespace config_guard {

struct MarkEpoch {
  bool quiet;
  uint64 epoch;
  uint64 generation;
};

// Its shared memory and its transaction callback (which ends the writers).
void InitMarkWriters();
void NoteMarkWriter(int32 config_id);
void EndMarkWriters(bool prepared);
MarkEpoch ReadMarkEpoch(int32 config_id);

}  // namespace config_guard

// A backend-local flag that is on while one command runs (config_guard's own
// trigger DDL, DROP EXTENSION config_guard), whatever nests inside it.
//
// Raise() returns the previous state, which the command restores when it
// returns; if it raises instead, the abort callbacks clear the flag: the
// abort of the subtransaction the command ran in, or of an outer one, or the
// end of the transaction. The abort of a subtransaction started inside the
// command (an exception block in an event trigger, say) leaves it on.
#pragma once

#include "pg.hpp"

extern "C" {
#include "access/xact.h"
}

namespace config_guard {

struct CommandFlag {
  bool on = false;
  SubTransactionId raised_in = InvalidSubTransactionId;

  CommandFlag Raise() {
    const CommandFlag previous = *this;
    on = true;
    raised_in = GetCurrentSubTransactionId();
    return previous;
  }
  void Restore(const CommandFlag& previous) { *this = previous; }
  // `aborted` is the subtransaction that aborted, InvalidSubTransactionId for
  // the whole transaction.
  void OnAbort(SubTransactionId aborted) {
    if (on && (aborted == InvalidSubTransactionId || aborted <= raised_in)) *this = CommandFlag();
  }
};

}  // namespace config_guard

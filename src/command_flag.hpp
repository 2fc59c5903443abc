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
  // Registers the callbacks that call OnAbort() for this flag (at _PG_init).
  void ClearOnAbort() {
    RegisterXactCallback(
        [](XactEvent event, void* arg) {
          if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_COMMIT ||
              event == XACT_EVENT_PREPARE)
            static_cast<CommandFlag*>(arg)->OnAbort(InvalidSubTransactionId);
        },
        this);
    RegisterSubXactCallback(
        [](SubXactEvent event, SubTransactionId subid, SubTransactionId, void* arg) {
          if (event == SUBXACT_EVENT_ABORT_SUB) static_cast<CommandFlag*>(arg)->OnAbort(subid);
        },
        this);
  }
};

}  // namespace config_guard

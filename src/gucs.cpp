#include "gucs.hpp"

#include "module.hpp"

extern "C" {
#include "utils/guc.h"
}

namespace config_guard {

int max_page_size = 10000;

void InitGucs() {
  DefineCustomIntVariable("config_guard.max_page_size", "Largest page_size accepted by config_guard.export_page.",
                          "Bounds the rows one export call can return, so a client cannot turn paging back "
                          "into one huge read.",
                          &max_page_size, 10000, 1, 1000000, PGC_SUSET, 0, nullptr, nullptr, nullptr);
  MarkGUCPrefixReserved("config_guard");
}

}  // namespace config_guard

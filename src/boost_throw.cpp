// Boost.Container's failure callbacks, so that a container error becomes an
// ordinary Postgres error instead of an exception (we build without them).
#include "pg_alloc.hpp"

namespace boost::container {

void throw_bad_alloc() {
  ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory in config_guard container")));
  pg_unreachable();
}

void throw_out_of_range(const char* str) {
  elog(ERROR, "config_guard container index out of range: %s", str);
  pg_unreachable();
}

void throw_length_error(const char* str) {
  ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("config_guard container too large: %s", str)));
  pg_unreachable();
}

void throw_logic_error(const char* str) {
  elog(ERROR, "config_guard container logic error: %s", str);
  pg_unreachable();
}

void throw_runtime_error(const char* str) {
  elog(ERROR, "config_guard container error: %s", str);
  pg_unreachable();
}

}  // namespace boost::container

#include "cursor_secret.hpp"

#include "module.hpp"

extern "C" {
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/fd.h"
}

namespace config_guard {
namespace {

constexpr const char* kKeyFile = "config_guard_cursor.key";
constexpr const char* kKeyTempFile = "config_guard_cursor.key.tmp";

std::uint8_t secret[core::kSipKeySize];

bool ReadKey() {
  const int fd = OpenTransientFile(kKeyFile, O_RDONLY | PG_BINARY);
  if (fd < 0) {
    if (errno != ENOENT) ereport(WARNING, (errcode_for_file_access(), errmsg("could not open \"%s\": %m", kKeyFile)));
    return false;
  }
  const ssize_t n = read(fd, secret, sizeof secret);
  std::uint8_t extra;
  const bool exact = n == static_cast<ssize_t>(sizeof secret) && read(fd, &extra, 1) == 0;
  CloseTransientFile(fd);
  if (!exact) ereport(WARNING, (errmsg("\"%s\" is not a config_guard key file: making a new one", kKeyFile)));
  return exact;
}

// Written to a temporary file, synced, then renamed: a crash leaves the old
// key or the new one, never half a key.
bool WriteKey() {
  const int fd = OpenTransientFile(kKeyTempFile, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
  if (fd < 0) return false;
  const bool ok =
      fchmod(fd, S_IRUSR | S_IWUSR) == 0 && write(fd, secret, sizeof secret) == sizeof secret && pg_fsync(fd) == 0;
  CloseTransientFile(fd);
  return ok && durable_rename(kKeyTempFile, kKeyFile, WARNING) == 0;
}

}  // namespace

void InitCursorSecret() {
  if (ReadKey()) return;
  if (!pg_strong_random(secret, sizeof secret))
    ereport(FATAL, (errmsg("config_guard could not generate a random cursor key")));
  if (!WriteKey())
    ereport(WARNING, (errcode_for_file_access(), errmsg("could not write \"%s\": %m", kKeyFile),
                      errdetail("Export cursors issued until the next restart will not be accepted after it.")));
}

const std::uint8_t (&CursorSecret())[core::kSipKeySize] { return secret; }

}  // namespace config_guard

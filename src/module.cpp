// Library entry point: _PG_init is a list of Init*() calls.
#include "config_entries.hpp"  // first: it includes the core headers
#include "module.hpp"
#include "admission.hpp"
#include "background.hpp"
#include "backoff_table.hpp"
#include "builder_identity.hpp"
#include "builder_slots.hpp"
#include "export_versions.hpp"
#include "mark_append.hpp"
#include "mark_skip.hpp"
#include "mark_writers.hpp"
#include "gateway.hpp"
#include "read_check.hpp"
#include "recent_reads.hpp"

extern "C" {
PG_MODULE_MAGIC;
PGDLLEXPORT void _PG_init(void);
}

namespace config_guard {

bool loaded_at_startup = false;

void RequirePreloaded() {
  if (!loaded_at_startup)
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("config_guard must be loaded via shared_preload_libraries"),
                    errhint("Add config_guard to shared_preload_libraries in postgresql.conf and restart the "
                            "server.")));
}

}  // namespace config_guard

void _PG_init(void) {
  using namespace config_guard;
  if (IsBinaryUpgrade) return;
  // GUCs exist either way, so that SET config_guard.* works and the prefix is
  // reserved; everything else needs the postmaster to have loaded us.
  InitGucs();
  if (!process_shared_preload_libraries_in_progress) return;
  loaded_at_startup = true;
  InitConfigEntries();
  InitConfigCounters();
  InitBackoffTable();
  InitBuilderSlots();
  InitMarkWriters();
  InitMarkSkip();
  InitRegistryCache();
  InitDependencies();
  InitBuilderIdentity();
  InitInvalidation();
  InitGateway();
  InitReadCheck();
  InitMarkAppend();
  InitCursorSecret();
  InitBuilder();
  InitAdmission();
  InitBackground();
  InitRecentReads();
  InitExportVersions();
}

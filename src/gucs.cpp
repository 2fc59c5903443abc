#include "gucs.hpp"

#include <climits>

#include "module.hpp"

extern "C" {
#include "utils/guc.h"
}

namespace config_guard {

int max_page_size = 10000;
bool export_detects_changes = true;
bool export_versions = true;
int export_version_ttl_s = 600;
bool standby_rebuild = true;
bool covered_writes = true;
char* primary_conninfo_setting = nullptr;
int rebuild_wait_timeout_ms = 5000;
int stale_if_error_s = 300;
int backoff_base_ms = 1000;
int backoff_max_ms = 60000;
int rebuild_alert_per_minute = 600;
int max_rebuilds_per_config = 8;
int cleanup_interval_s = 10;
int cleanup_age_s = 300;
bool refresh_ahead = true;
int refresh_ahead_window_s = 900;
int background_build_rate = 20;
int evict_unread_after_s = 0;
int max_tracked_tenants = 10000;
int max_tracked_configs = 1000;

void InitGucs() {
  DefineCustomIntVariable("config_guard.max_page_size", "Largest page_size accepted by config_guard.export_page.",
                          "Bounds the rows one export call can return, so a client cannot turn paging back "
                          "into one huge read.",
                          &max_page_size, 10000, 1, 1000000, PGC_SUSET, 0, nullptr, nullptr, nullptr);
  DefineCustomBoolVariable("config_guard.export_detects_changes",
                           "Whether export_page fails with 40001 when the tenant changed since the walk's first page.",
                           "Off, a walk goes on across changes: rows that existed throughout still come exactly once.",
                           &export_detects_changes, true, PGC_USERSET, 0, nullptr, nullptr, nullptr);
  DefineCustomBoolVariable("config_guard.export_versions",
                           "Whether export_page serves the config's readers from stored versions of the tenant's rows.",
                           "A walk then reads one version from its first page to its last; off, every page reads the "
                           "sources.",
                           &export_versions, true, PGC_USERSET, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("config_guard.export_version_ttl",
                          "How long an export version stays readable after a newer one replaced it.",
                          "A walk of a version dropped since fails with 40001 and starts again.", &export_version_ttl_s,
                          600, 0, 365 * 24 * 3600, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
  DefineCustomBoolVariable(
      "config_guard.covered_writes",
      "Whether a write to a tenant already stale through an unfolded mark writes no mark of its own.",
      "Set it alike on a primary and its hot standbys: there, an export walk page by page that "
      "detects changes refuses to start on a stale tenant while it is on.",
      &covered_writes, true, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomBoolVariable("config_guard.standby_rebuild",
                           "Whether get() on a hot standby asks the primary to rebuild a stale tenant.",
                           "One session per standby and tenant asks; the primary builds once for all and the document "
                           "arrives by replication. Off, a standby builds without storing, for every caller.",
                           &standby_rebuild, true, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomStringVariable(
      "config_guard.primary_conninfo",
      "Connection string a standby asks the primary's rebuilds through (empty: primary_conninfo).",
      "Its role needs read access to the configs (grant_read) on the primary.", &primary_conninfo_setting, "",
      PGC_SIGHUP, GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("config_guard.rebuild_wait_timeout",
                          "How long config_guard.get() waits for another session's rebuild of the same tenant.",
                          "After it, a caller that allows staleness gets the stored document; others get 55P03.",
                          &rebuild_wait_timeout_ms, 5000, 0, 3600 * 1000, PGC_USERSET, GUC_UNIT_MS, nullptr, nullptr,
                          nullptr);
  DefineCustomIntVariable("config_guard.stale_if_error",
                          "Age up to which the last good document is served while its builder fails (0 = never).",
                          nullptr, &stale_if_error_s, 300, 0, 7 * 24 * 3600, PGC_USERSET, GUC_UNIT_S, nullptr, nullptr,
                          nullptr);
  DefineCustomIntVariable("config_guard.backoff_base",
                          "Delay before a failed builder may run again, doubled per failure.",
                          "The delay is jittered between half and all of it.", &backoff_base_ms, 1000, 1, 3600 * 1000,
                          PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("config_guard.backoff_max", "Longest delay between runs of a failing builder.", nullptr,
                          &backoff_max_ms, 60000, 1, 24 * 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr,
                          nullptr);
  DefineCustomIntVariable("config_guard.rebuild_alert_per_minute",
                          "Builder runs of one config per minute above which a WARNING is logged (0 = off).",
                          "Logged at most once a minute per config.", &rebuild_alert_per_minute, 600, 0, INT_MAX,
                          PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("config_guard.max_rebuilds_per_config",
                          "Builder runs of one config allowed at once across the cluster (0 = no cap).",
                          "A cold start over thousands of tenants then runs this many builders at a time; the "
                          "others wait, bounded by config_guard.rebuild_wait_timeout.",
                          &max_rebuilds_per_config, 8, 0, 10000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("config_guard.cleanup_interval",
                          "How often the background cleanup prunes and compacts invalidation marks (0 = never).",
                          "Marks of tenants without a document, older than config_guard.cleanup_age, in every "
                          "database with config_guard, as config_guard.prune_invalidations() does; and the marks "
                          "of each tenant folded into one.",
                          &cleanup_interval_s, 10, 0, 24 * 3600, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("config_guard.cleanup_age", "Age from which the background cleanup prunes a mark.", nullptr,
                          &cleanup_age_s, 300, 0, 365 * 24 * 3600, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
  DefineCustomBoolVariable("config_guard.refresh_ahead",
                           "Rebuild in the background the documents a commit made stale, if read recently.",
                           "The background worker rebuilds stored documents read within "
                           "config_guard.refresh_ahead_window that a committed write invalidated, so the next "
                           "reader gets a hit.",
                           &refresh_ahead, true, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "config_guard.refresh_ahead_window", "Tenants read within this long are kept fresh by refresh-ahead.", nullptr,
      &refresh_ahead_window_s, 900, 1, 365 * 24 * 3600, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("config_guard.background_build_rate",
                          "Background builds per second (refresh-ahead and config_guard.warm()), per database visit.",
                          "0 stops background builds; queued tenants wait.", &background_build_rate, 20, 0, 100000,
                          PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "config_guard.evict_unread_after",
      "Stored documents nobody read for this long are evicted by the background cleanup (0 = never).",
      "A later get() builds the tenant again. Reads are remembered since the server started.", &evict_unread_after_s, 0,
      0, 365 * 24 * 3600, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
  // Sizes of shared memory exist only when the postmaster loads the library:
  // a PGC_POSTMASTER setting cannot be created in a running server.
  if (process_shared_preload_libraries_in_progress) {
    DefineCustomIntVariable("config_guard.max_tracked_tenants",
                            "Failing tenants whose backoff is tracked in shared memory.", nullptr, &max_tracked_tenants,
                            10000, 100, 10000000, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("config_guard.max_tracked_configs", "Configs whose statistics are kept in shared memory.",
                            nullptr, &max_tracked_configs, 1000, 10, 1000000, PGC_POSTMASTER, 0, nullptr, nullptr,
                            nullptr);
  }
  // Last: reserving the prefix removes every config_guard.* placeholder not
  // defined by then, with a WARNING (postgresql.conf's sizes among them).
  MarkGUCPrefixReserved("config_guard");
}

}  // namespace config_guard

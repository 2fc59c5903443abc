// config_guard.* settings.
#pragma once

namespace config_guard {

// Largest page_size export_page accepts (PGC_SUSET: a DBA's cap, not a hint).
extern int max_page_size;
// Whether export_page refuses (40001) to continue a walk across a change.
extern bool export_detects_changes;
extern bool covered_writes;
// Whether export_page serves readers of the config from stored versions.
extern bool export_versions;
// How long a superseded export version stays readable (s).
extern int export_version_ttl_s;
// How long get() waits for another session's rebuild (ms).
extern int rebuild_wait_timeout_ms;
// Whether a standby asks the primary to rebuild, and through which connection
// string (empty: the server's primary_conninfo).
extern bool standby_rebuild;
extern char* primary_conninfo_setting;
// How old a last good document may be to serve while the builder fails (s, 0 = never).
extern int stale_if_error_s;
// Backoff after builder failures (ms): first delay and cap.
extern int backoff_base_ms;
extern int backoff_max_ms;
// Builder runs per config and minute above which a WARNING is logged (0 = off).
extern int rebuild_alert_per_minute;
// Builder runs of one config allowed at once, cluster-wide (0 = no cap).
extern int max_rebuilds_per_config;
// Background cleanup: how often (s, 0 = off) and from what age marks of
// tenants without a document are pruned (s).
extern int cleanup_interval_s;
extern int cleanup_age_s;
// Background builds (warm.hpp): on or off, the window of documents kept
// fresh (s), and builds per second.
extern bool refresh_ahead;
extern int refresh_ahead_window_s;
extern int background_build_rate;
// Stored documents nobody read for this long are evicted (s, 0 = never).
extern int evict_unread_after_s;
// Shared-memory sizes (postmaster start only).
extern int max_tracked_tenants;
extern int max_tracked_configs;

}  // namespace config_guard

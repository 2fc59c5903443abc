// Export versions: the rows export_page serves a config's readers from.
//
// A version is every row of one tenant's sources, in export order, read under
// one snapshot and stored in config_guard.export_rows with the tenant's
// generation under that snapshot (store.hpp: it changes whenever the tenant is
// invalidated). A walk's first page takes the tenant's current version if its
// generation is still the tenant's, else one session materializes a new one
// (the others wait for it, as get() waits for a rebuild); every later page of
// the walk reads that same version, by its cursor, whatever was written since.
// Superseded versions stay readable for config_guard.export_version_ttl.
#pragma once

#include "registry.hpp"
#include "tenant.hpp"

namespace config_guard {

// Its transaction callback (a transaction that made a version is not prepared).
void InitExportVersions();

// Whether this database's config_guard has the export version tables (0.6).
bool ExportVersionsInstalled();

// The version a walk of the tenant starts from, materialized here if the
// current one is stale or missing. 0 when no version can serve this
// session's walk: a standby, a read-only or REPEATABLE READ transaction that
// sees no fresh one; a transaction that wrote to the config's sources (no
// version may hold what it has not committed); a tenant without rows; a wait
// for another session's version past rebuild_wait_timeout. The walk then reads
// the sources page by page.
int64 StartVersion(ConfigDef* def, const TenantKey& tenant);

// Appends up to `page_size` rows of `version` after `after_seq` to the result
// set, with their cursors (`make_cursor(seq)`). Fails with 40001 if the
// version is gone (superseded longer ago than the TTL) or is not the tenant's.
using SeqCursor = Datum (*)(const ConfigDef& def, const TenantKey& tenant, int64 version, int64 seq);
void WriteVersionPage(const ConfigDef& def, const TenantKey& tenant, int64 version, int64 after_seq, int64 page_size,
                      ReturnSetInfo* rsinfo, SeqCursor make_cursor);

// Background cleanup (not connected to SPI): drops versions superseded longer ago than the TTL.
// Returns the rows deleted.
uint64 DropExpiredExportVersions(int64 max_versions);

// undefine: the rows of the config's versions (the versions cascade).
void ForgetExportVersions(int32 config_id);

}  // namespace config_guard

// The registry: configurations defined with config_guard.define(), as read
// from the extension's tables and cached per backend with their prepared
// export plans.
//
// The cache is dropped when the registry tables or a source table get a
// relcache invalidation (define/undefine send one; ALTER TABLE does), but never
// while a config_guard call is using it: a ConfigDef stays valid from
// AcquireConfig() until ReleaseConfig() or the end of the transaction.
#pragma once

#include "pg.hpp"
#include "source_shape.hpp"

extern "C" {
#include "executor/spi.h"
}

namespace config_guard {

struct SourceDef {
  SourceShape shape;
  FmgrInfo key_output[INDEX_MAX_KEYS];
  Oid key_input[INDEX_MAX_KEYS];
  Oid key_ioparam[INDEX_MAX_KEYS];
  SPIPlanPtr first_page_plan;  // prepared on first use, kept
  SPIPlanPtr next_page_plan;
};

struct ConfigDef {
  char name[NAMEDATALEN];  // hash key
  int32 config_id;
  Oid builder;
  Oid tenant_type;
  Oid owner;
  char tenant_column[NAMEDATALEN];
  FmgrInfo tenant_output;
  int nsources;
  SourceDef* sources;
  SPIPlanPtr builder_plan;  // prepared on first use, kept
  Oid read_checked_user;    // the last user RequireReadAccess() allowed
};

// Schema and tables of the registry; raises if the extension is not installed.
Oid RegistryNamespace();
Oid ConfigsTable();

// The cache's tables and indexes (0.2), resolved once per registry invalidation.
struct CacheRelations {
  Oid documents;
  Oid documents_pkey;
  Oid invalidations;
  Oid invalidations_key;
  Oid invalidations_config_wide;
};
const CacheRelations& CacheTables();

// Whether the installed extension version has the cache (0.2 and later): the
// library may run against a 0.1 schema until ALTER EXTENSION ... UPDATE.
bool CacheInstalled();

// Checks a config name's shape (1..NAMEDATALEN-1 bytes), 22023 otherwise.
void ValidateConfigName(const char* name);

// Looks up a config by name (42704 if unknown).
ConfigDef* AcquireConfig(const char* name);
void ReleaseConfig();

// Sends the invalidation that makes every backend reload the registry.
void InvalidateRegistry();

// 42501 unless the current user owns the config, was granted it with
// grant_read(), or is a member of such a role (readers.cpp).
void RequireReadAccess(ConfigDef* def);

}  // namespace config_guard

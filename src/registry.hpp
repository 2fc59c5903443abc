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
#include "canonical_key.hpp"
#include "source_shape.hpp"

extern "C" {
#include "executor/spi.h"
#include "utils/uuid.h"
}

namespace config_guard {

struct SourceDef {
  SourceShape shape;
  FmgrInfo row_to_jsonb;         // to_jsonb() of the source's row type
  KeyType keys[INDEX_MAX_KEYS];  // canonical keys of the keyset columns
  SPIPlanPtr first_page_plan;    // prepared on first use, kept
  SPIPlanPtr next_page_plan;
};

struct ConfigDef {
  char name[NAMEDATALEN];  // hash key
  int32 config_id;
  pg_uuid_t definition_id;  // a redefined config is another one (cursors are bound to it)
  Oid builder;
  Oid tenant_type;
  Oid owner;  // the builder's owner: a config follows its builder's ownership
  char tenant_column[NAMEDATALEN];
  KeyType tenant_key;
  int nsources;
  SourceDef* sources;
  int nshared;  // tables every tenant reads: any change invalidates the whole config
  Oid* shared_sources;
  int nchildren;  // sources that reach the tenant column through foreign keys (not exported)
  Oid* children;
  Oid read_checked_user;  // the last user RequireReadAccess() allowed
};

// The schema the extension config_guard is installed in, InvalidOid if it is
// not installed in this database.
Oid ExtensionNamespace();

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
// A copy: an invalidation may clear the cached oids at any catalog access.
CacheRelations CacheTables();
// Whether the extension (and with it the cache tables) is there: false once
// DROP EXTENSION ran in this transaction. Cheap while CacheTables() is valid.
bool CacheTablesPresent();

// 55000 unless the extension's objects in this database are of the version
// this library expects: after installing a new library, the SQL objects of an
// older version only serve ALTER EXTENSION config_guard UPDATE.
void RequireCurrentSchema();
// The same question without an error: whether config_guard is installed in
// this database with the objects of this library's version.
bool ExtensionIsCurrent();

// Changes whenever the registry may have changed (define, undefine, grants,
// a relcache reset): caches of facts about configs compare against it.
uint64 RegistryGeneration();

// The owner of a config: its builder's owner (55000 if the builder is gone).
Oid ConfigOwner(const char* config, Oid builder);

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
// The same, as a question.
bool HasReadAccess(ConfigDef* def);
// 42501 unless the current user owns the config (or is a member of its owner).
void RequireOwnership(const ConfigDef& def, const char* action);

}  // namespace config_guard

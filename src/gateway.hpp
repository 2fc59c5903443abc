// The gateway: everything config_guard runs as the extension's owner.
//
// The extension's tables are writable (and mostly readable) only by their
// owner, a superuser. Every statement config_guard runs on them is listed in
// gateway.cpp: fixed text in which every table, function and operator is
// schema-qualified, prepared once per backend, and run as the owner with
// SECURITY_RESTRICTED_OPERATION and search_path = pg_catalog, pg_temp inside
// a GUC nest level that is rolled back when the statement ends. Callers pass
// values of built-in types only (a tenant arrives as its text key, computed
// outside by the type's own output function), so nothing a role can define
// (operators, casts, functions, types) ever runs inside.
//
// Entry points check the caller's rights themselves before they call in. If a
// statement fails, the (sub)transaction abort restores the user and the
// settings.
#pragma once

#include "pg.hpp"

extern "C" {
#include "executor/spi.h"
}

namespace config_guard {

enum class Stmt {
  kLoadConfig,    // $1 name, $2 home -> config_id, builder (NULL: from elsewhere), tenant_column, tenant_type,
                  //   definition_id, sources, builder_signature, signature out of date, shared sources
  kFindConfig,    // $1 name, $2 home -> config_id, builder, tenant_column, sources (shared ones included),
                  //   shared sources (needs no 0.4 or 0.5 column)
  kSourceColumn,  // $1 config_id, $2 relid -> tenant_column ('' if shared), covered (relid or an ancestor is a source),
                  // name, direct (relid is a source), via and oid of the covering source; no row: no such config
  kInsertConfig,  // $1 name, $2 builder, $3 tenant_column, $4 tenant_type, $5 home -> config_id, none if taken
  kInsertSources,             // $1 config_id, $2 sources regclass[], $3 shared sources regclass[], $4 via text[]
  kDeleteConfig,              // $1 config_id (sources, readers and documents cascade)
  kForgetMarks,               // $1 config_id
  kConfigsOfBuilder,          // $1 function oid, $2 home -> name, config_id
  kConfigsOfSource,           // $1 relid -> name, tenant_column, tenant_type, config_id, shared
  kConfigsAbove,              // $1 relid -> config_id, tenant_column ('' if shared), name of configs with a source
                              //   above relid
  kConfigsOfType,             // $1 type oid -> config_id of configs with a source column of the type
  kReaders,                   // $1 config_id -> reader oid
  kGrantRead,                 // $1 config_id, $2 role
  kRevokeRead,                // $1 config_id, $2 role
  kStoreDocument,             // $1 config_id, $2 tenant, $3 document, $4 snapshot, $5 built_at, $6 build_ms,
                              //   $7 background -> the replaced row's background, built_at
  kGeneration,                // $1 config_id, $2 tenant -> generation
  kSetRoleLimit,              // $1 role, $2 max_active, $3 max_queued, $4 queue_timeout
  kDropRoleLimit,             // $1 role
  kPrune,                     // $1 older_than, $2 batch (NULL: all) -> how many marks of tenants without a document
                              // were deleted
  kPrunable,                  // $1 older_than -> a row if kPrune would delete a mark
  kPreparedTransactions,      // -> a row if any prepared transaction exists
  kConfigIds,                 // -> config_id of every config of the database
  kForeignBuilders,           // $1 home -> config_id, builder_signature of rows from another cluster or database
  kAdoptBuilder,              // $1 config_id, $2 builder, $3 home (skips a row being adopted)
  kAdoptBuilderWait,          // the same, waiting for the row
  kResignBuilders,            // $1 home -> signatures of this cluster's rows brought up to date
  kResignBuildersSkipLocked,  // the same, skipping rows another transaction holds
  kChain,                     // $1 config_id, $2 child source -> foreign key oids up to the tenant's source
  kConfigsOfForeignKey,       // $1 relid, $2 constraint name -> name of configs whose chains use it
  kConfigsCovering,           // $1 config_id -> config_id of the other configs whose sources include its own
  kCompact,                   // $1 groups at most -> marks folded away (under the prune fence)
  kCompactable,               // -> a row if kCompact would fold marks
  kConfigsOfSecondWay,        // $1 child source, $2 relid -> name of a config with both (a second way to a tenant)
  kEnqueue,                   // $1 config_id, $2 text[] tenants -> queued for a background build
  kStaleDocuments,            // $1 at most -> config_id, tenant of stale stored documents
  kDequeue,                   // $1 at most -> config name, tenant taken off the queue
  kUnreadCandidates,          // $1 age, $2 at most -> config_id, tenant of documents built before
  kEvict,                     // $1 config_id, $2 tenants, $3 age -> documents deleted
  // Export versions (0.6 tables: used only where ExportVersionsInstalled()):
  kExportVersionCurrent,   // $1 config_id, $2 tenant -> version, generation of the newest current version
  kExportVersionOf,        // $1 version -> config_id, tenant
  kExportVersionId,        // -> a new version number
  kExportVersionInsert,    // $1 version, $2 config_id, $3 tenant, $4 generation, $5 rows, $6 built_at, $7 build_ms
                           //   (the tenant's earlier current versions are superseded)
  kExportPage,             // $1 version, $2 after seq, $3 at most -> seq, source, item
  kExportVersionsExpired,  // $1 age, $2 versions at most -> rows deleted with the versions superseded before $1
  kForgetExportRows,       // $1 config_id (the versions cascade from the config)
  kCount
};

// Runs `stmt` as the extension's owner. The caller is connected to SPI; the
// rows are in SPI_tuptable. Returns SPI_processed. With a snapshot, the
// statement runs under it (else under the transaction's, as any statement).
uint64 RunAsOwner(Stmt stmt, Datum* values, const char* nulls = nullptr, Snapshot snapshot = nullptr);

// Runs one utility command as the extension's owner, the same way: used for
// the invalidation triggers, which only config_guard may attach. The caller
// builds `sql` from quoted identifiers and literals only.
void UtilityAsOwner(const char* sql);

// Whether a gateway statement is running: what it reads is config_guard's
// own business, never a builder's (read_check.hpp).
bool InGateway();
void InitGateway();

// Owner of the extension's tables (cached until the registry is invalidated).
Oid ExtensionOwner();
void ForgetExtensionOwner();

}  // namespace config_guard

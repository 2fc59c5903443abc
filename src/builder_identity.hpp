// How a config names its builder so that pg_upgrade and a restore find it.
//
// config_guard.configs keeps the builder as an oid, a schema-qualified
// signature and the home of that oid: the cluster's system identifier, the
// database's oid and the oid of config_guard.configs, which pg_upgrade (new
// system identifier), a restore (another database, another table) and a
// template copy (another database) change. At home, the oid is the builder
// whatever it is called now: no name is ever looked up. A row from elsewhere
// adopts the function its signature names, at its first use or at the rename
// that changes that name, and is home from then on. Renames of functions,
// schemas, types and domains carry the signatures along, so that they name
// the builders when a dump or an upgrade takes them elsewhere; define() and
// those renames take conflicting locks, so that no rename misses a config
// being defined.
#pragma once

#include "pg.hpp"

namespace config_guard {

void InitBuilderIdentity();

// This cluster's home for builder oids
// ("<system identifier>:<database oid>:<configs oid>").
Datum BuilderHome();

// Taken by define() before it prints the builder's signature: a rename that
// could change signatures waits for it to end, and it for the rename.
void LockSignaturesForDefine();

// The function a signature names, or InvalidOid (never an error: a type or a
// schema it names may be gone).
Oid ResolveSignature(const char* signature);

// Makes a row from elsewhere home: its builder is the function `builder`,
// signed as it prints now. Skipped where nothing can be written (a standby, a
// read-only transaction). Without `wait`, a row another transaction is
// adopting is skipped and no error escapes (a reader's load); with it, the
// row is waited for (a rename that changed its signature).
void AdoptBuilder(int32 config_id, Oid builder, bool wait);
// Brings this cluster's signatures up to date, where something can be
// written: after a rename (`wait`: rows are waited for, errors raised), or
// when a load finds one out of date (rows being re-signed are skipped, and no
// error escapes).
void ResignBuilders(bool wait);

}  // namespace config_guard

// config_guard.export_page(): one keyset page of a tenant's configuration,
// across the config's sources in order, and config_guard.export_sql(), the
// queries it runs.
#include "core/cursor_codec.hpp"
#include "mark_skip.hpp"
#include "cursor_secret.hpp"
#include "export_query.hpp"
#include "export_versions.hpp"
#include "gucs.hpp"
#include "identity.hpp"
#include "module.hpp"
#include "store.hpp"
#include "tenant.hpp"

extern "C" {
#include "catalog/pg_class.h"
#include "funcapi.h"
#include "utils/acl.h"
#include "utils/syscache.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"
#include "utils/snapmgr.h"
}

namespace config_guard {
namespace {

// A cursor into an export version (export_versions.hpp) names no source: its
// generation field holds the version, its one key the row's position in it.
constexpr uint16 kVersionCursor = 0xFFFF;

// Where a page starts: the first source, or just after a cursor's row.
struct StartPosition {
  int source = 0;
  bool after_key = false;
  uint64 generation = 0;  // of the tenant's configuration when the walk began
  Datum keys[INDEX_MAX_KEYS] = {};
  int64 version = 0;  // a walk of an export version: which, and after which row
  int64 after_seq = 0;
};

[[noreturn]] void RejectCursor(const char* reason) {
  ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid export cursor: %s", reason),
                  errhint("Start the walk again from the first page, with after => NULL.")));
}

void CursorContext(void*) { errcontext("reading an export cursor"); }

// What a cursor is bound to besides its own bytes: this database and this
// definition of the config (a redefined config, even with the same id after
// DROP EXTENSION, is another one). The tenant is in the cursor itself.
struct Binding {  // no padding: hashed byte for byte
  uint32 database;
  unsigned char definition[UUID_LEN];
};

core::CursorAuth AuthFor(const ConfigDef& def, Binding* binding) {
  binding->database = MyDatabaseId;
  memcpy(binding->definition, def.definition_id.data, UUID_LEN);
  return {&CursorSecret(), binding, sizeof *binding};
}

StartPosition DecodeStart(text* after, const ConfigDef& def, const TenantKey& tenant) {
  const char* data = VARDATA_ANY(after);
  const size_t len = VARSIZE_ANY_EXHDR(after);
  auto* scratch = static_cast<unsigned char*>(palloc(core::CursorScratchSize(len)));
  core::CursorFields fields;
  Binding binding;
  const core::CursorError error = core::DecodeCursor(data, len, AuthFor(def, &binding), scratch, &fields);
  if (error != core::CursorError::kNone && error != core::CursorError::kNotAuthentic)
    RejectCursor(core::CursorErrorMessage(error));
  // Which binding differs, from the fields as written (trusted only if authentic).
  if (fields.config_id != static_cast<uint32>(def.config_id))
    RejectCursor("it belongs to another config, or to an earlier definition of this one");
  if (fields.tenant_hash != tenant.hash) RejectCursor("it belongs to another tenant");
  if (error != core::CursorError::kNone) RejectCursor(core::CursorErrorMessage(error));
  if (fields.source_index == kVersionCursor) {
    int64 seq = 0;
    if (fields.nkeys != 1 || fields.keys[0].len != sizeof seq || fields.generation == 0 ||
        fields.generation > static_cast<uint64>(PG_INT64_MAX))
      RejectCursor("it does not match the config's sources");
    memcpy(&seq, fields.keys[0].data, sizeof seq);
    StartPosition start;
    start.version = static_cast<int64>(fields.generation);
    start.after_seq = seq;
    return start;
  }
  if (fields.source_index >= def.nsources || fields.nkeys != def.sources[fields.source_index].shape.nkeys)
    RejectCursor("it does not match the config's sources");

  StartPosition start;
  start.source = fields.source_index;
  start.after_key = true;
  start.generation = fields.generation;
  const SourceDef& src = def.sources[start.source];
  ErrorContextCallback callback = {error_context_stack, CursorContext, nullptr};
  error_context_stack = &callback;
  // The MAC vouches for the images: they are the bytes this server issued.
  for (int k = 0; k < fields.nkeys; ++k)
    start.keys[k] = ValueFromImage(src.keys[k], fields.keys[k].data, fields.keys[k].len);
  error_context_stack = callback.previous;
  return start;
}

// The text of a cursor with these fields, authenticated for the config.
Datum CursorText(const core::CursorFields& fields, const ConfigDef& def) {
  auto* scratch = static_cast<unsigned char*>(palloc(core::CursorBinarySize(fields)));
  const size_t len = core::CursorTextSize(fields);
  text* result = static_cast<text*>(palloc(VARHDRSZ + len));
  SET_VARSIZE(result, VARHDRSZ + len);
  Binding binding;
  core::EncodeCursor(fields, AuthFor(def, &binding), scratch, VARDATA(result));
  return PointerGetDatum(result);
}

Datum RowCursor(SourceDef* src, int source_index, const ConfigDef& def, const TenantKey& tenant, uint64 generation,
                HeapTuple row, TupleDesc desc) {
  core::CursorFields fields;
  fields.generation = generation;
  fields.config_id = static_cast<uint32>(def.config_id);
  fields.tenant_hash = tenant.hash;
  fields.source_index = static_cast<uint16>(source_index);
  fields.nkeys = static_cast<uint16>(src->shape.nkeys);
  for (int k = 0; k < src->shape.nkeys; ++k) {
    bool isnull = false;
    const Datum key = SPI_getbinval(row, desc, 2 + k, &isnull);
    const KeyImage image = ImageOf(src->keys[k], key);
    fields.keys[k] = {image.data, image.len};
  }
  return CursorText(fields, def);
}

// The cursor of a version's row.
Datum VersionCursor(const ConfigDef& def, const TenantKey& tenant, int64 version, int64 seq) {
  core::CursorFields fields;
  fields.generation = static_cast<uint64>(version);
  fields.config_id = static_cast<uint32>(def.config_id);
  fields.tenant_hash = tenant.hash;
  fields.source_index = kVersionCursor;
  fields.nkeys = 1;
  fields.keys[0] = {reinterpret_cast<const char*>(&seq), sizeof seq};
  return CursorText(fields, def);
}

// Whether the caller may read every exported row as the version holds it:
// it may SELECT each source, and no source has row-level security (which
// could show the caller fewer rows than the config's owner reads).
bool ReadsWhatVersionsHold(const ConfigDef& def) {
  for (int s = 0; s < def.nsources; ++s) {
    const Oid relid = def.sources[s].shape.relid;
    if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK) return false;
    HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tuple)) return false;
    const bool rls = reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple))->relrowsecurity;
    ReleaseSysCache(tuple);
    if (rls) return false;
  }
  return true;
}

// Whether this walk is served from export versions: where the tables exist
// and the setting allows, a reader of the config who could read the same
// rows itself. Everyone else reads the sources with its own rights, page by
// page.
bool ServeVersions(ConfigDef* def) {
  return export_versions && ExportVersionsInstalled() && HasReadAccess(def) && ReadsWhatVersionsHold(*def);
}

// Appends up to `page_size` rows from `start` onwards to the result set.
void WritePage(ConfigDef* def, const TenantKey& tenant, const StartPosition& start, int64 page_size,
               ReturnSetInfo* rsinfo) {
  MemoryContext row_cxt =
      AllocSetContextCreate(CurrentMemoryContext, "config_guard export row", ALLOCSET_DEFAULT_SIZES);
  int64 remaining = page_size;
  for (int s = start.source; s < def->nsources && remaining > 0; ++s) {
    SourceDef* src = &def->sources[s];
    const bool after_key = start.after_key && s == start.source;
    // A source keyed by the tenant alone has one row, already returned.
    if (after_key && src->shape.nkeys == 0) continue;

    Datum args[2 + INDEX_MAX_KEYS];
    args[0] = tenant.value;
    args[1] = Int64GetDatum(remaining);
    for (int k = 0; after_key && k < src->shape.nkeys; ++k) args[2 + k] = start.keys[k];
    const int rc = SPI_execute_plan(PagePlan(*def, src, after_key), args, nullptr, true, 0);
    if (rc != SPI_OK_SELECT) elog(ERROR, "export query failed: %s", SPI_result_code_string(rc));

    SPITupleTable* rows = SPI_tuptable;
    // The rows were read with the caller's rights. Turning them into jsonb may
    // call a cast to json that a column type's owner wrote: that runs as the
    // config's owner, never as the caller.
    IdentityScope scope(def->owner, true);
    scope.Pin("search_path", kSafeSearchPath);
    scope.PinDeterministicOutput();  // the same export text in every session
    for (uint64 i = 0; i < SPI_processed; ++i) {
      CHECK_FOR_INTERRUPTS();
      MemoryContext old = MemoryContextSwitchTo(row_cxt);
      bool isnull = false;
      Datum values[3];
      bool nulls[3] = {false, false, false};
      values[0] = ObjectIdGetDatum(src->shape.relid);
      values[1] = FunctionCall1(&src->row_to_jsonb, SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull));
      values[2] = RowCursor(src, s, *def, tenant, start.generation, rows->vals[i], rows->tupdesc);
      tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
      MemoryContextSwitchTo(old);
      MemoryContextReset(row_cxt);
    }
    scope.Leave();
    remaining -= static_cast<int64>(SPI_processed);
    SPI_freetuptable(rows);
  }
  MemoryContextDelete(row_cxt);
}

char* ConfigArgument(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0)) ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("config must not be null")));
  return text_to_cstring(PG_GETARG_TEXT_PP(0));
}

// The first page of a walk that detects changes: fenced, so that no write of
// the tenant from now on goes without moving its generation, and read under a
// snapshot that sees the writes that went without before. In READ COMMITTED
// that is a snapshot taken now (pushed: true); under the transaction's
// snapshot, taken earlier, a covered write it may not see is a serialization
// failure.
bool FenceForWalk(const ConfigDef& def, const TenantKey& tenant) {
  // A standby cannot fence the primary: a write the primary covers moves no
  // generation it could see. Covering needs a mark of the tenant in the
  // table, so a walk starts only where there is none under its snapshot.
  if (RecoveryInProgress() && covered_writes) {
    PushActiveSnapshot(GetTransactionSnapshot());
    if (TenantHasMarks(def, tenant.text, GetActiveSnapshot()))
      ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                      errmsg("cannot start an export walk of tenant %s of config \"%s\" that detects changes on a "
                             "hot standby while the tenant is stale",
                             tenant.display, def.name),
                      errdetail("Writes to a stale tenant may leave no mark (config_guard.covered_writes), and a "
                                "standby cannot tell them apart."),
                      errhint("Call config_guard.get() on the tenant first (its rebuild clears the marks), walk on the "
                              "primary, or set config_guard.export_detects_changes to off.")));
    return true;
  }
  if (!FenceSkippers(def.config_id, tenant.text))
    ereport(ERROR,
            (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
             errmsg("timed out waiting for writes to tenant %s of config \"%s\" to end", tenant.display, def.name),
             errdetail("A walk that detects changes starts once the writes in progress have ended."),
             errhint("Retry the first page.")));
  if (!IsolationUsesXactSnapshot()) {
    PushActiveSnapshot(GetTransactionSnapshot());
    return true;
  }
  if (CoveredWriteMayBeUnseen(def.config_id, tenant.text, GetActiveSnapshot()))
    ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                    errmsg("configuration of tenant %s in config \"%s\" was being written when this transaction "
                           "began",
                           tenant.display, def.name),
                    errdetail("A walk that detects changes cannot start from a snapshot that may miss a write."),
                    errhint("Retry the transaction.")));
  return false;
}

}  // namespace

CG_FUNCTION(config_guard_export_page) {
  RequirePreloaded();
  char* name = ConfigArgument(fcinfo);
  if (PG_ARGISNULL(3)) ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("page_size must not be null")));
  const int32 page_size = PG_GETARG_INT32(3);
  if (page_size < 1 || page_size > max_page_size)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("page_size %d is out of range", page_size),
                    errdetail("page_size must be between 1 and %d.", max_page_size),
                    errhint("config_guard.max_page_size sets the upper bound.")));

  InitMaterializedSRF(fcinfo, 0);
  SPI_connect();
  ConfigDef* def = AcquireConfig(name);
  const TenantKey tenant = TenantFromArgument(fcinfo, 1, *def);
  auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  StartPosition start;
  if (!PG_ARGISNULL(2)) start = DecodeStart(PG_GETARG_TEXT_PP(2), *def, tenant);
  const int64 version = !PG_ARGISNULL(2) ? start.version : ServeVersions(def) ? StartVersion(def, tenant) : 0;
  if (version != 0) {
    // (Again on every page: a grant may be revoked during the walk.)
    RequireReadAccess(def);
    if (!ReadsWhatVersionsHold(*def))
      ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                      errmsg("permission denied to go on with the export of config \"%s\"", def->name),
                      errdetail("The caller can no longer read every row of its sources as they are exported."),
                      errhint("Start the walk again from the first page, with after => NULL.")));
    WriteVersionPage(*def, tenant, version, start.after_seq, page_size, rsinfo, VersionCursor);
    ReleaseConfig();
    SPI_finish();
    return static_cast<Datum>(0);
  }
  const bool detect = export_detects_changes;
  // A walk that detects changes starts from a snapshot in which every write
  // of the tenant moved the generation or is seen (mark_skip.hpp).
  const bool fresh_snapshot = detect && PG_ARGISNULL(2) && FenceForWalk(*def, tenant);
  const uint64 generation = detect ? static_cast<uint64>(TenantGeneration(*def, tenant.text)) : 0;
  if (PG_ARGISNULL(2)) {
    start.generation = generation;
  } else {
    if (detect && start.generation != generation)
      ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                      errmsg("configuration of tenant %s in config \"%s\" changed during the export", tenant.display,
                             def->name),
                      errdetail("Its rows were invalidated after the first page of this walk was read."),
                      errhint("Restart the export from the first page, with after => NULL.")));
  }
  WritePage(def, tenant, start, page_size, rsinfo);
  if (fresh_snapshot) PopActiveSnapshot();
  ReleaseConfig();
  SPI_finish();
  return static_cast<Datum>(0);
}

CG_FUNCTION(config_guard_export_sql) {
  RequirePreloaded();
  char* name = ConfigArgument(fcinfo);
  InitMaterializedSRF(fcinfo, 0);
  auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  SPI_connect();
  ConfigDef* def = AcquireConfig(name);
  for (int s = 0; s < def->nsources; ++s) {
    const SourceDef& src = def->sources[s];
    Datum values[3] = {ObjectIdGetDatum(src.shape.relid), CStringGetTextDatum(PageQuery(*def, src, false)),
                       CStringGetTextDatum(PageQuery(*def, src, true))};
    bool nulls[3] = {false, false, false};
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  }
  ReleaseConfig();
  SPI_finish();
  return static_cast<Datum>(0);
}

}  // namespace config_guard

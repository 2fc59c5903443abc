#include "core/hash.hpp"
#include "identity.hpp"
#include "tenant.hpp"

extern "C" {
#include "access/transam.h"
#include "utils/lsyscache.h"
}

namespace config_guard {
namespace {

constexpr std::uint64_t kTenantSeed = 0x74656E616E745F31ULL;  // "tenant_1"

struct ConversionContext {
  const ConfigDef* def;
  Oid from_type;
};

void ConversionErrorContext(void* arg) {
  auto* ctx = static_cast<ConversionContext*>(arg);
  errcontext("converting the tenant value from type %s to type %s, the tenant column \"%s\" of config \"%s\"",
             format_type_be(ctx->from_type), format_type_be(ctx->def->tenant_type), ctx->def->tenant_column,
             ctx->def->name);
}

}  // namespace

Datum InputValue(const ConfigDef& def, Oid type, char* text) {
  Oid input = InvalidOid;
  Oid ioparam = InvalidOid;
  getTypeInputInfo(type, &input, &ioparam);
  if (type < FirstNormalObjectId) return OidInputFunctionCall(input, text, ioparam, -1);
  IdentityScope scope(def.owner, true);
  scope.Pin("search_path", kSafeSearchPath);
  const Datum value = OidInputFunctionCall(input, text, ioparam, -1);
  scope.Leave();
  return value;
}

TenantKey TenantFromArgument(FunctionCallInfo fcinfo, int argno, ConfigDef& def) {
  if (PG_ARGISNULL(argno)) ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("tenant must not be null")));

  const Oid from_type = get_fn_expr_argtype(fcinfo->flinfo, argno);
  TenantKey key;
  key.value = PG_GETARG_DATUM(argno);
  if (from_type != def.tenant_type) {
    // Convert through text, as a cast from an unknown literal would.
    ConversionContext cctx = {&def, from_type};
    ErrorContextCallback callback = {error_context_stack, ConversionErrorContext, &cctx};
    error_context_stack = &callback;
    Oid output = InvalidOid;
    bool varlena = false;
    getTypeOutputInfo(from_type, &output, &varlena);
    key.value = InputValue(def, def.tenant_type, OidOutputFunctionCall(output, key.value));
    error_context_stack = callback.previous;
  }
  key.text = TenantKeyText(&def.tenant_key, key.value);
  key.display = def.tenant_key.readable ? key.text : OutputFunctionCall(&def.tenant_key.output, key.value);
  const size_t len = strlen(key.text);
  if (len > kMaxTenantKeyBytes)
    ereport(ERROR,
            (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
             errmsg("tenant key of %zu bytes is longer than config_guard's limit of %d bytes", len, kMaxTenantKeyBytes),
             errdetail("Documents and invalidation marks are indexed by the tenant key.")));
  key.hash = TenantHash(key.text);
  return key;
}

uint64 TenantHash(const char* text) { return core::Hash64(text, strlen(text), kTenantSeed); }

}  // namespace config_guard

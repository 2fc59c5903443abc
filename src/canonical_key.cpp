#include "canonical_key.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "access/tupmacs.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_type_d.h"
#include "commands/defrem.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
}

namespace config_guard {
namespace {

bool HasEqualImage(Oid type, Oid collation) {
  const Oid base = getBaseType(type);
  const Oid opclass = GetDefaultOpClass(base, BTREE_AM_OID);
  if (!OidIsValid(opclass)) return false;
  const Oid input = get_opclass_input_type(opclass);
  const Oid proc = get_opfamily_proc(get_opclass_family(opclass), input, input, BTEQUALIMAGE_PROC);
  if (!OidIsValid(proc)) return false;
  return DatumGetBool(OidFunctionCall1Coll(proc, collation, ObjectIdGetDatum(input)));
}

bool HasCanonicalOutput(Oid base) {
  switch (base) {
    case INT2OID:
    case INT4OID:
    case INT8OID:
    case OIDOID:
    case UUIDOID:
    case BOOLOID:
    case TEXTOID:
    case VARCHAROID:
      return true;
    default:
      return false;
  }
}

// A type that goes with a session's temporary schema, itself or through the
// domains it is built on.
bool IsTemporaryType(Oid type) {
  for (Oid t = type; OidIsValid(t);) {
    HeapTuple tuple = SearchSysCache1(TYPEOID, ObjectIdGetDatum(t));
    if (!HeapTupleIsValid(tuple)) return false;
    const auto* form = reinterpret_cast<Form_pg_type>(GETSTRUCT(tuple));
    const bool temporary = isAnyTempNamespace(form->typnamespace);
    const Oid next = form->typtype == TYPTYPE_DOMAIN ? form->typbasetype : InvalidOid;
    ReleaseSysCache(tuple);
    if (temporary) return true;
    t = next;
  }
  return false;
}

}  // namespace

void RequireEqualImage(Oid type, Oid collation, const char* column, const char* relation) {
  // Dropped with a session's temporary schema, it would take the column along.
  if (IsTemporaryType(type))
    ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                    errmsg("column \"%s\" of %s has a temporary type, which cannot be a tenant or key column", column,
                           relation),
                    errdetail("A config outlives the session, so the types of its keys must too.")));
  if (HasEqualImage(type, collation)) return;
  ereport(ERROR,
          (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
           errmsg("column \"%s\" of %s has type %s, which cannot be a tenant or key column", column, relation,
                  format_type_be(type)),
           errdetail("Equal values of this type%s can differ in their binary form, so a key built from one session "
                     "would not find the same key built from another.",
                     OidIsValid(collation) ? " under this collation" : ""),
           errhint("Use an integer, uuid, date, timestamp, enum, or text with a deterministic collation.")));
}

void DescribeKeyType(Oid type, KeyType* key, MemoryContext cxt) {
  key->type = type;
  get_typlenbyval(type, &key->typlen, &key->typbyval);
  key->readable = HasCanonicalOutput(getBaseType(type));
  Oid output = InvalidOid;
  bool varlena = false;
  getTypeOutputInfo(type, &output, &varlena);
  fmgr_info_cxt(output, &key->output, cxt);
}

KeyImage ImageOf(const KeyType& key, Datum value) {
  if (key.typbyval) {
    auto* buf = static_cast<char*>(palloc(key.typlen));
    store_att_byval(buf, value, key.typlen);
    return {buf, static_cast<uint32>(key.typlen)};
  }
  if (key.typlen > 0) return {DatumGetPointer(value), static_cast<uint32>(key.typlen)};
  if (key.typlen == -1) {
    const struct varlena* v = PG_DETOAST_DATUM_PACKED(value);
    return {VARDATA_ANY(v), static_cast<uint32>(VARSIZE_ANY_EXHDR(v))};
  }
  const char* s = DatumGetCString(value);  // typlen -2
  return {s, static_cast<uint32>(strlen(s))};
}

Datum ValueFromImage(const KeyType& key, const char* data, uint32 len) {
  if (key.typbyval || key.typlen > 0) {
    if (len != static_cast<uint32>(key.typlen))
      ereport(ERROR,
              (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid export cursor: a key has the wrong size")));
    if (!key.typbyval) {
      char* copy = static_cast<char*>(palloc(len));
      memcpy(copy, data, len);
      return PointerGetDatum(copy);
    }
    union {
      char bytes[sizeof(Datum)];
      Datum aligned;
    } buf = {};
    memcpy(buf.bytes, data, len);
    return fetch_att(buf.bytes, true, key.typlen);
  }
  if (key.typlen == -1) {
    auto* v = static_cast<struct varlena*>(palloc(VARHDRSZ + len));
    SET_VARSIZE(v, VARHDRSZ + len);
    memcpy(VARDATA(v), data, len);
    return PointerGetDatum(v);
  }
  return CStringGetDatum(pnstrdup(data, len));
}

char* TenantKeyText(KeyType* key, Datum value) {
  if (key->readable) return OutputFunctionCall(&key->output, value);
  const KeyImage image = ImageOf(*key, value);
  char* text = static_cast<char*>(palloc(2 + 2 * image.len + 1));
  text[0] = '\\';
  text[1] = 'x';
  const uint64 n = hex_encode(image.data, image.len, text + 2);
  text[2 + n] = '\0';
  return text;
}

}  // namespace config_guard

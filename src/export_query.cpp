#include "export_query.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_type_d.h"
#include "commands/defrem.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
}

namespace config_guard {
namespace {

// The default btree operator of `type` for `strategy`, and its schema.
Oid BtreeOperator(Oid type, int16 strategy) {
  // The operator class's own input type: a domain's base type, or anyenum,
  // anyarray ... for the polymorphic classes.
  const Oid opclass = GetDefaultOpClass(getBaseType(type), BTREE_AM_OID);
  const Oid input = get_opclass_input_type(opclass);
  const Oid opno = get_opfamily_member(get_opclass_family(opclass), input, input, strategy);
  if (!OidIsValid(opno)) elog(ERROR, "no btree operator for type %s", format_type_be(type));
  return opno;
}

Oid OperatorNamespace(Oid opno) {
  HeapTuple tuple = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
  if (!HeapTupleIsValid(tuple)) elog(ERROR, "cache lookup failed for operator %u", opno);
  const Oid nsp = reinterpret_cast<Form_pg_operator>(GETSTRUCT(tuple))->oprnamespace;
  ReleaseSysCache(tuple);
  return nsp;
}

void AppendOperator(StringInfo sql, Oid opno, Oid nsp) {
  appendStringInfo(sql, "OPERATOR(%s.%s)", quote_identifier(get_namespace_name(nsp)), get_opname(opno));
}

}  // namespace

char* PageQuery(const ConfigDef& def, const SourceDef& src, bool after_key) {
  const SourceShape& shape = src.shape;
  StringInfoData sql;
  initStringInfo(&sql);

  // The whole row: export_page turns it into jsonb itself (export.cpp). A
  // child source's rows are those whose parents belong to the tenant.
  appendStringInfoString(&sql, "SELECT s");
  for (int k = 0; k < shape.nkeys; ++k) appendStringInfo(&sql, ", s.%s", shape.key_names[k]);
  appendStringInfo(&sql, " FROM %s s%s WHERE %s ", shape.qualified_name, shape.tenant_joins, shape.tenant_expr);
  const Oid eq = BtreeOperator(shape.tenant_type, BTEqualStrategyNumber);
  AppendOperator(&sql, eq, OperatorNamespace(eq));
  appendStringInfoString(&sql, " $1");

  if (after_key && shape.nkeys > 0) {
    // A row comparison resolves one operator name for every column: qualify it
    // only when all the columns' operators live in the same schema.
    Oid nsp = InvalidOid;
    Oid first_gt = InvalidOid;
    for (int k = 0; k < shape.nkeys; ++k) {
      const Oid gt = BtreeOperator(shape.key_types[k], BTGreaterStrategyNumber);
      const Oid gt_nsp = OperatorNamespace(gt);
      if (k == 0) {
        nsp = gt_nsp;
        first_gt = gt;
      } else if (gt_nsp != nsp) {
        nsp = InvalidOid;
      }
    }
    appendStringInfoString(&sql, " AND (");
    for (int k = 0; k < shape.nkeys; ++k) appendStringInfo(&sql, "%ss.%s", k ? ", " : "", shape.key_names[k]);
    appendStringInfoString(&sql, ") ");
    if (OidIsValid(nsp))
      AppendOperator(&sql, first_gt, nsp);
    else
      appendStringInfoString(&sql, ">");
    appendStringInfoString(&sql, " (");
    for (int k = 0; k < shape.nkeys; ++k) appendStringInfo(&sql, "%s$%d", k ? ", " : "", k + 3);
    appendStringInfoString(&sql, ")");
  }

  // (A child's keyset alone: its tenant is not a column of its own.)
  const char* separator = " ORDER BY ";
  if (!shape.child) {
    appendStringInfo(&sql, "%s%s", separator, shape.tenant_expr);
    separator = ", ";
  }
  for (int k = 0; k < shape.nkeys; ++k) {
    appendStringInfo(&sql, "%ss.%s", separator, shape.key_names[k]);
    separator = ", ";
  }
  appendStringInfoString(&sql, " LIMIT $2");
  return sql.data;
}

SPIPlanPtr PagePlan(const ConfigDef& def, SourceDef* src, bool after_key) {
  SPIPlanPtr* slot = after_key ? &src->next_page_plan : &src->first_page_plan;
  if (*slot != nullptr) return *slot;

  Oid types[2 + INDEX_MAX_KEYS];
  types[0] = def.tenant_type;
  types[1] = INT8OID;
  const int nkeys = after_key ? src->shape.nkeys : 0;
  for (int k = 0; k < nkeys; ++k) types[2 + k] = src->shape.key_types[k];

  // Always the generic plan: an ordered index scan under a LIMIT whose size is
  // unknown. A custom plan for a tenant's last few rows may pick a bitmap scan
  // and a Sort, and replanning every page would cost more than the page.
  SPIPlanPtr plan = SPI_prepare_cursor(PageQuery(def, *src, after_key), 2 + nkeys, types, CURSOR_OPT_GENERIC_PLAN);
  if (plan == nullptr) elog(ERROR, "preparing the export query failed: %s", SPI_result_code_string(SPI_result));
  SPI_keepplan(plan);
  *slot = plan;
  return plan;
}

}  // namespace config_guard

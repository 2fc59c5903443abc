#include "gateway.hpp"

#include "command_flag.hpp"
#include "identity.hpp"
#include "registry.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type_d.h"
#include "nodes/parsenodes.h"
#include "utils/syscache.h"
}

namespace config_guard {
namespace {

struct Statement {
  const char* sql;
  int nargs;
  Oid types[7];
  bool read_only;
  int expected;  // SPI result code
};

// Indexed by Stmt. Every operator is OPERATOR(pg_catalog.x), every function
// pg_catalog.f, every table config_guard.t: the text means the same thing
// whatever the session's search_path, and calls nothing a role can define.
// Statements that also run before ALTER EXTENSION ... UPDATE TO '0.4'
// (undefine, the checks of DDL on functions) read the 0.4 builder columns
// through to_jsonb(), which gives NULL for a column that is not there.
#define CG_COLUMN_ANY(c, column) "(pg_catalog.to_jsonb(" c ") OPERATOR(pg_catalog.->>) '" column "')"

// The sources of config `config` among the relations of `up`, folded into
// how their triggers find tenants: every (a shared source, or sources that
// disagree), else the via of the child source (NULL: the tenant column), and
// one covering source.
#define CG_COVER(config, relid) \
  "SELECT pg_catalog.bool_or((" CG_COLUMN_ANY("s", "shared") ")::pg_catalog.bool)"                     \
  "       OR pg_catalog.count(DISTINCT COALESCE((" CG_COLUMN_ANY("s", "via") ")"             \
  "                 OPERATOR(pg_catalog.||) s.source::pg_catalog.oid::pg_catalog.text, ''))"           \
  "          OPERATOR(pg_catalog.>) 1 AS every,"                                                         \
  "       pg_catalog.min(" CG_COLUMN_ANY("s", "via") ") AS via,"                                      \
  "       pg_catalog.min(s.source::pg_catalog.oid) AS source"                                          \
  "  FROM config_guard.config_sources s JOIN up u ON s.source::pg_catalog.oid OPERATOR(pg_catalog.=) " relid \
  " WHERE s.config_id OPERATOR(pg_catalog.=) " config

// clang-format off
const Statement kStatements[] = {
    // kLoadConfig ($2: this cluster's builder home; a row from elsewhere
    // gives its signature to resolve, and no oid)
    {"SELECT c.config_id, "
     "       CASE WHEN c.builder_home OPERATOR(pg_catalog.=) $2 THEN c.builder END, "
     "       c.tenant_column, c.tenant_type::pg_catalog.oid, "
     "       c.definition_id, "
     "       pg_catalog.array_agg(s.source::pg_catalog.oid ORDER BY s.position) FILTER (WHERE NOT s.shared), "
     "       c.builder_signature, "
     "       c.builder_home OPERATOR(pg_catalog.=) $2 "
     "       AND c.builder_signature OPERATOR(pg_catalog.<>) c.builder::pg_catalog.regprocedure::pg_catalog.text, "
     "       pg_catalog.array_agg(s.source::pg_catalog.oid ORDER BY s.position) FILTER (WHERE s.shared), "
     "       pg_catalog.array_agg(s.source::pg_catalog.oid ORDER BY s.position) FILTER (WHERE s.via IS NOT NULL) "
     "  FROM config_guard.configs c "
     "  JOIN config_guard.config_sources s ON s.config_id OPERATOR(pg_catalog.=) c.config_id "
     " WHERE c.name OPERATOR(pg_catalog.=) $1 GROUP BY c.config_id",
     2,
     {TEXTOID, TEXTOID},
     true,
     SPI_OK_SELECT},
    // kFindConfig ($2: this cluster's builder home; a row from elsewhere
    // that has not adopted its builder yet gives no oid)
    {"SELECT c.config_id, "
     "       CASE WHEN " CG_COLUMN_ANY(
         "c",
         "builder_home") " IS NULL "
                         "              OR " CG_COLUMN_ANY(
                             "c",
                             "builder_home") " OPERATOR(pg_catalog.=) $2 "
                                             "            THEN c.builder::pg_catalog.oid END, "
                                             "       c.tenant_column, "
                                             "       pg_catalog.array_agg(s.source::pg_catalog.oid ORDER BY "
                                             "s.position), "
                                             "       pg_catalog.array_agg(s.source::pg_catalog.oid) FILTER "
                                             "(WHERE (" CG_COLUMN_ANY(
                                                 "s",
                                                 "shared") ")::pg_catalog.bool) "
                                                           "  FROM config_guard.configs c "
                                                           "  LEFT JOIN config_guard.config_sources s ON s.config_id "
                                                           "OPERATOR(pg_catalog.=) c.config_id "
                                                           " WHERE c.name OPERATOR(pg_catalog.=) $1 GROUP BY "
                                                           "c.config_id",
     2,
     {TEXTOID, TEXTOID},
     true,
     SPI_OK_SELECT},
    // kSourceColumn
    // (the tenant column its triggers name; covered: relid is a source, or a
    // partition or inheritance child of one, at any depth; direct: relid
    // itself is a source; via and source: the covering source's foreign key
    // to its parent if it is a child source, and the covering source. Under
    // a shared source, or under sources that disagree on how to find the
    // tenant (multiple inheritance), the column is '' and there is no via:
    // every tenant.)
    {"WITH RECURSIVE up(relid) AS ("
     "  SELECT $2"
     "  UNION"
     "  SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN up u ON i.inhrelid OPERATOR(pg_catalog.=) u.relid) "
     "SELECT CASE WHEN cover.every THEN ''::pg_catalog.name ELSE c.tenant_column END,"
     "       cover.source IS NOT NULL,"
     "       c.name,"
     "       EXISTS (SELECT FROM config_guard.config_sources s"
     "                WHERE s.config_id OPERATOR(pg_catalog.=) c.config_id"
     "                  AND s.source::pg_catalog.oid OPERATOR(pg_catalog.=) $2),"
     "       CASE WHEN NOT cover.every THEN cover.via END, cover.source"
     "  FROM config_guard.configs c"
     "  LEFT JOIN LATERAL (" CG_COVER("c.config_id", "u.relid") ") cover ON true"
     " WHERE c.config_id OPERATOR(pg_catalog.=) $1",
     2,
     {INT4OID, OIDOID},
     true,
     SPI_OK_SELECT},
    // kInsertConfig
    {"INSERT INTO config_guard.configs "
     "       (config_id, name, builder, tenant_column, tenant_type, builder_signature, builder_home) "
     "VALUES (pg_catalog.nextval('config_guard.config_id_seq'::pg_catalog.regclass), $1, $2::pg_catalog.oid, $3, $4, "
     "        $2::pg_catalog.text, $5) "
     "ON CONFLICT (name) DO NOTHING RETURNING config_id",
     5,
     {TEXTOID, REGPROCEDUREOID, NAMEOID, REGTYPEOID, TEXTOID},
     false,
     SPI_OK_INSERT_RETURNING},
    // kInsertSources
    // ($2: the sources, $3: the shared sources, listed after them; $4: the
    // foreign key of each source to its parent, NULL where it has the tenant
    // column)
    {"INSERT INTO config_guard.config_sources (config_id, position, source, shared, via) "
     "SELECT $1, s.ord OPERATOR(pg_catalog.-) 1, s.source, s.ord OPERATOR(pg_catalog.>) pg_catalog.cardinality($2), "
     "       ($4::pg_catalog.name[])[s.ord] "
     "  FROM pg_catalog.unnest($2 OPERATOR(pg_catalog.||) $3) WITH ORDINALITY AS s(source, ord)",
     4,
     {INT4OID, REGCLASSARRAYOID, REGCLASSARRAYOID, TEXTARRAYOID},
     false,
     SPI_OK_INSERT},
    // kDeleteConfig
    {"DELETE FROM config_guard.configs WHERE config_id OPERATOR(pg_catalog.=) $1", 1, {INT4OID}, false, SPI_OK_DELETE},
    // kForgetMarks
    {"DELETE FROM config_guard.invalidations WHERE config_id OPERATOR(pg_catalog.=) $1",
     1,
     {INT4OID},
     false,
     SPI_OK_DELETE},
    // kConfigsOfBuilder ($2: this cluster's builder home; a row from
    // elsewhere is matched by its signature)
    {"SELECT c.name, c.config_id FROM config_guard.configs c "
     " WHERE CASE WHEN " CG_COLUMN_ANY(
         "c",
         "builder_home") " IS NULL "
                         "              OR " CG_COLUMN_ANY(
                             "c",
                             "builder_home") " OPERATOR(pg_catalog.=) $2 "
                                             "            THEN c.builder::pg_catalog.oid OPERATOR(pg_catalog.=) $1 "
                                             "            ELSE " CG_COLUMN_ANY(
                                                 "c", "builder_signature") " OPERATOR(pg_catalog.=) "
                                                                           "                 "
                                                                           "$1::pg_catalog.regprocedure::pg_catalog."
                                                                           "text END "
                                                                           "ORDER BY c.name",
     2,
     {OIDOID, TEXTOID},
     true,
     SPI_OK_SELECT},
    // kConfigsOfSource
    // (shared: a shared source, which has no tenant column)
    {"SELECT c.name, c.tenant_column, c.tenant_type::pg_catalog.oid, c.config_id,"
     "       (" CG_COLUMN_ANY(
         "s", "shared") ")::pg_catalog.bool FROM config_guard.configs c "
                        "  JOIN config_guard.config_sources s ON s.config_id OPERATOR(pg_catalog.=) c.config_id "
                        " WHERE s.source::pg_catalog.oid OPERATOR(pg_catalog.=) $1 ORDER BY c.name",
     1,
     {OIDOID},
     true,
     SPI_OK_SELECT},
    // kConfigsAbove: configs with a source that is a strict ancestor of relid
    // (relid is one of its partitions or inheritance children, at any depth),
    // the tenant column its triggers name and the foreign key they name under
    // a child source, as kSourceColumn gives them
    {"WITH RECURSIVE up(relid) AS ("
     "  SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid OPERATOR(pg_catalog.=) $1"
     "  UNION"
     "  SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN up u ON i.inhrelid OPERATOR(pg_catalog.=) u.relid) "
     "SELECT c.config_id, CASE WHEN cover.every THEN ''::pg_catalog.name ELSE c.tenant_column END, c.name,"
     "       CASE WHEN NOT cover.every THEN cover.via END"
     "  FROM config_guard.configs c"
     "  CROSS JOIN LATERAL (" CG_COVER("c.config_id", "u.relid") ") cover"
     " WHERE cover.source IS NOT NULL",
     1,
     {OIDOID},
     true,
     SPI_OK_SELECT},
    // kConfigsOfType: configs with a source that has a column of the type, or
    // of a type built on it (a domain over it, an array of it, a composite or
    // range containing it), at any depth
    {"WITH RECURSIVE built_on(type) AS ("
     "  SELECT $1"
     "  UNION"
     "  SELECT CASE WHEN d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass::pg_catalog.oid"
     "              THEN d.objid ELSE c.reltype END"
     "    FROM built_on b"
     "    JOIN pg_catalog.pg_depend d"
     "      ON d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass::pg_catalog.oid"
     "     AND d.refobjid OPERATOR(pg_catalog.=) b.type"
     "    LEFT JOIN pg_catalog.pg_class c"
     "      ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid"
     "     AND c.oid OPERATOR(pg_catalog.=) d.objid"
     "   WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass::pg_catalog.oid"
     "      OR c.relkind OPERATOR(pg_catalog.=) 'c'::pg_catalog.\"char\") "
     "SELECT DISTINCT s.config_id FROM config_guard.config_sources s "
     "  JOIN pg_catalog.pg_depend d "
     "    ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid "
     "   AND d.objid OPERATOR(pg_catalog.=) s.source::pg_catalog.oid "
     "   AND d.objsubid OPERATOR(pg_catalog.>) 0 "
     "  JOIN built_on b ON d.refobjid OPERATOR(pg_catalog.=) b.type "
     " WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass::pg_catalog.oid",
     1,
     {OIDOID},
     true,
     SPI_OK_SELECT},
    // kReaders
    {"SELECT r.reader::pg_catalog.oid FROM config_guard.readers r WHERE r.config_id OPERATOR(pg_catalog.=) $1",
     1,
     {INT4OID},
     true,
     SPI_OK_SELECT},
    // kGrantRead
    {"INSERT INTO config_guard.readers (config_id, reader) VALUES ($1, $2) ON CONFLICT DO NOTHING",
     2,
     {INT4OID, REGROLEOID},
     false,
     SPI_OK_INSERT},
    // kRevokeRead
    {"DELETE FROM config_guard.readers WHERE config_id OPERATOR(pg_catalog.=) $1 "
     "AND reader::pg_catalog.oid OPERATOR(pg_catalog.=) $2::pg_catalog.oid",
     2,
     {INT4OID, REGROLEOID},
     false,
     SPI_OK_DELETE},
    // kStoreDocument: folds the marks the builder's snapshot covered into the row's count
    {"WITH previous AS ("
     "  SELECT d.background, d.built_at FROM config_guard.documents d"
     "   WHERE d.config_id OPERATOR(pg_catalog.=) $1 AND d.tenant OPERATOR(pg_catalog.=) $2), "
     "folded AS ("
     "  DELETE FROM config_guard.invalidations i"
     "   WHERE i.config_id OPERATOR(pg_catalog.=) $1 AND i.tenant OPERATOR(pg_catalog.=) $2"
     "     AND (pg_catalog.pg_visible_in_snapshot(i.xid, $4)"
     // this transaction's own marks: its writes (before the build, or the
     // builder's own) are in the document it stores, or roll back with it
     "          OR i.xid OPERATOR(pg_catalog.=) pg_catalog.pg_current_xact_id())"
     "  RETURNING i.weight) "
     "INSERT INTO config_guard.documents AS d "
     "       (config_id, tenant, document, snapshot, built_at, build_ms, compacted, background) "
     "SELECT $1, $2, $3, $4, $5, $6, (SELECT COALESCE(pg_catalog.sum(f.weight), 0)::pg_catalog.int8 FROM folded f), $7 "
     " WHERE EXISTS (SELECT FROM config_guard.configs c WHERE c.config_id OPERATOR(pg_catalog.=) $1) "
     "ON CONFLICT (config_id, tenant) DO UPDATE SET document = EXCLUDED.document, "
     "  snapshot = EXCLUDED.snapshot, built_at = EXCLUDED.built_at, build_ms = EXCLUDED.build_ms, "
     "  compacted = d.compacted OPERATOR(pg_catalog.+) EXCLUDED.compacted, background = EXCLUDED.background "
     "RETURNING (SELECT p.background FROM previous p), (SELECT p.built_at FROM previous p)",
     7,
     {INT4OID, TEXTOID, JSONBOID, PG_SNAPSHOTOID, TIMESTAMPTZOID, FLOAT8OID, BOOLOID},
     false,
     SPI_OK_INSERT_RETURNING},
    // kGeneration
    // (a prune of the config's marks moves it by 2^32: a walk never mistakes a
    // prune followed by writes for no change)
    {"SELECT COALESCE((SELECT d.compacted FROM config_guard.documents d "
     "                  WHERE d.config_id OPERATOR(pg_catalog.=) $1 AND d.tenant OPERATOR(pg_catalog.=) $2), "
     "                 0::pg_catalog.int8) "
     "       OPERATOR(pg_catalog.+) "
     "       (SELECT COALESCE(pg_catalog.sum(i.weight), 0)::pg_catalog.int8 FROM config_guard.invalidations i "
     "         WHERE i.config_id OPERATOR(pg_catalog.=) $1 "
     "           AND (i.tenant OPERATOR(pg_catalog.=) $2 OR i.tenant IS NULL)) "
     // (OPERATOR() forms all bind alike, left to right: hence the parentheses)
     "       OPERATOR(pg_catalog.+) (4294967296::pg_catalog.int8 OPERATOR(pg_catalog.*) "
     "       COALESCE((SELECT c.prunes FROM config_guard.configs c WHERE c.config_id OPERATOR(pg_catalog.=) $1), "
     "                0::pg_catalog.int8))",
     2,
     {INT4OID, TEXTOID},
     true,
     SPI_OK_SELECT},
    // kSetRoleLimit
    {"INSERT INTO config_guard.role_limits AS l (role, max_active, max_queued, queue_timeout) "
     "VALUES ($1, $2, $3, $4) ON CONFLICT (role) DO UPDATE SET max_active = EXCLUDED.max_active, "
     "max_queued = EXCLUDED.max_queued, queue_timeout = EXCLUDED.queue_timeout",
     4,
     {REGROLEOID, INT4OID, INT4OID, INTERVALOID},
     false,
     SPI_OK_INSERT},
    // kDropRoleLimit
    {"DELETE FROM config_guard.role_limits WHERE role::pg_catalog.oid OPERATOR(pg_catalog.=) $1::pg_catalog.oid",
     1,
     {REGROLEOID},
     false,
     SPI_OK_DELETE},
    // kPrune
    // ($2: at most this many marks of each kind, NULL: all)
    {"WITH pruned AS ("
     "  DELETE FROM config_guard.invalidations i"
     "   WHERE i.ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
     "    SELECT m.ctid FROM config_guard.invalidations m"
     "     WHERE m.tenant IS NOT NULL"
     "       AND m.at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) $1)"
     "       AND NOT EXISTS (SELECT FROM config_guard.documents d"
     "                        WHERE d.config_id OPERATOR(pg_catalog.=) m.config_id"
     "                          AND d.tenant OPERATOR(pg_catalog.=) m.tenant)"
     "     LIMIT $2 FOR UPDATE SKIP LOCKED))"
     "  RETURNING i.config_id), "
     // config-wide marks that every stored document of the config has seen
     "seen AS ("
     "  DELETE FROM config_guard.invalidations i"
     "   WHERE i.ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
     "    SELECT m.ctid FROM config_guard.invalidations m"
     "     WHERE m.tenant IS NULL"
     "       AND m.at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) $1)"
     "       AND NOT EXISTS (SELECT FROM config_guard.documents d"
     "                        WHERE d.config_id OPERATOR(pg_catalog.=) m.config_id"
     "                          AND NOT pg_catalog.pg_visible_in_snapshot(m.xid, d.snapshot))"
     "     LIMIT $2 FOR UPDATE SKIP LOCKED))"
     "  RETURNING i.config_id), "
     // export walks count marks: a config that lost some counts a prune instead
     "bumped AS ("
     "  UPDATE config_guard.configs c SET prunes = c.prunes OPERATOR(pg_catalog.+) 1"
     "   WHERE EXISTS (SELECT FROM pruned p WHERE p.config_id OPERATOR(pg_catalog.=) c.config_id)"
     "      OR EXISTS (SELECT FROM seen s WHERE s.config_id OPERATOR(pg_catalog.=) c.config_id)) "
     "SELECT (SELECT pg_catalog.count(*) FROM pruned) OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM seen)",
     2,
     {INTERVALOID, INT8OID},
     false,
     SPI_OK_SELECT},
    // kPrunable: $1 older_than -> a row if kPrune would delete a mark
    {"SELECT 1 WHERE EXISTS (SELECT FROM config_guard.invalidations m"
     "   WHERE m.tenant IS NOT NULL"
     "     AND m.at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) $1)"
     "     AND NOT EXISTS (SELECT FROM config_guard.documents d"
     "                      WHERE d.config_id OPERATOR(pg_catalog.=) m.config_id"
     "                        AND d.tenant OPERATOR(pg_catalog.=) m.tenant))"
     "   OR EXISTS (SELECT FROM config_guard.invalidations m"
     "   WHERE m.tenant IS NULL"
     "     AND m.at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) $1)"
     "     AND NOT EXISTS (SELECT FROM config_guard.documents d"
     "                      WHERE d.config_id OPERATOR(pg_catalog.=) m.config_id"
     "                        AND NOT pg_catalog.pg_visible_in_snapshot(m.xid, d.snapshot)))",
     1,
     {INTERVALOID},
     true,
     SPI_OK_SELECT},
    // kPreparedTransactions
    {"SELECT 1 FROM pg_catalog.pg_prepared_xacts LIMIT 1", 0, {}, true, SPI_OK_SELECT},
    // kConfigIds
    {"SELECT c.config_id FROM config_guard.configs c", 0, {}, true, SPI_OK_SELECT},
    // kForeignBuilders: $1 home -> config_id, signature of the rows from elsewhere
    {"SELECT c.config_id, c.builder_signature FROM config_guard.configs c "
     " WHERE c.builder_home OPERATOR(pg_catalog.<>) $1",
     1,
     {TEXTOID},
     true,
     SPI_OK_SELECT},
    // kAdoptBuilder: $1 config_id, $2 builder found by its signature, $3 home
    // (a row another transaction is adopting is skipped: a reader never waits)
    {"UPDATE config_guard.configs c SET builder = $2, builder_home = $3, "
     "       builder_signature = $2::pg_catalog.regprocedure::pg_catalog.text "
     " WHERE c.config_id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT f.config_id FROM config_guard.configs f "
     "   WHERE f.config_id OPERATOR(pg_catalog.=) $1 AND f.builder_home OPERATOR(pg_catalog.<>) $3 "
     "   FOR NO KEY UPDATE SKIP LOCKED))",
     3,
     {INT4OID, OIDOID, TEXTOID},
     false,
     SPI_OK_UPDATE},
    // kAdoptBuilderWait: the same, waiting for the row (a rename changed its signature)
    {"UPDATE config_guard.configs c SET builder = $2, builder_home = $3, "
     "       builder_signature = $2::pg_catalog.regprocedure::pg_catalog.text "
     " WHERE c.config_id OPERATOR(pg_catalog.=) $1 AND c.builder_home OPERATOR(pg_catalog.<>) $3",
     3,
     {INT4OID, OIDOID, TEXTOID},
     false,
     SPI_OK_UPDATE},
    // kResignBuilders: $1 home -> the signatures of this cluster's rows as
    // their functions print now
    {"UPDATE config_guard.configs c SET builder_signature = c.builder::pg_catalog.regprocedure::pg_catalog.text"
     " WHERE c.builder_home OPERATOR(pg_catalog.=) $1"
     "   AND c.builder_signature OPERATOR(pg_catalog.<>) c.builder::pg_catalog.regprocedure::pg_catalog.text"
     "   AND EXISTS (SELECT FROM pg_catalog.pg_proc p WHERE p.oid OPERATOR(pg_catalog.=) c.builder)",
     1,
     {TEXTOID},
     false,
     SPI_OK_UPDATE},
    // kResignBuildersSkipLocked: the same, skipping rows another transaction holds
    {"UPDATE config_guard.configs c SET builder_signature = c.builder::pg_catalog.regprocedure::pg_catalog.text"
     " WHERE c.config_id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT f.config_id FROM config_guard.configs f"
     "   WHERE f.builder_home OPERATOR(pg_catalog.=) $1"
     "     AND f.builder_signature OPERATOR(pg_catalog.<>) f.builder::pg_catalog.regprocedure::pg_catalog.text"
     "     AND EXISTS (SELECT FROM pg_catalog.pg_proc p WHERE p.oid OPERATOR(pg_catalog.=) f.builder)"
     "   FOR NO KEY UPDATE OF f SKIP LOCKED))",
     1,
     {TEXTOID},
     false,
     SPI_OK_UPDATE},
    // kChain: the foreign keys from a child source up to the source with the
    // tenant column, nearest first (each a child source's `via`)
    {"WITH RECURSIVE chain(depth, con, parent) AS ("
     "  SELECT 0, k.oid, k.confrelid FROM config_guard.config_sources s"
     "    JOIN pg_catalog.pg_constraint k ON k.conrelid OPERATOR(pg_catalog.=) s.source::pg_catalog.oid"
     "     AND k.conname OPERATOR(pg_catalog.=) s.via AND k.contype OPERATOR(pg_catalog.=) 'f'"
     "   WHERE s.config_id OPERATOR(pg_catalog.=) $1 AND s.source::pg_catalog.oid OPERATOR(pg_catalog.=) $2"
     "  UNION ALL"
     "  SELECT c.depth OPERATOR(pg_catalog.+) 1, k.oid, k.confrelid FROM chain c"
     "    JOIN config_guard.config_sources s ON s.config_id OPERATOR(pg_catalog.=) $1"
     "     AND s.source::pg_catalog.oid OPERATOR(pg_catalog.=) c.parent"
     "    JOIN pg_catalog.pg_constraint k ON k.conrelid OPERATOR(pg_catalog.=) s.source::pg_catalog.oid"
     "     AND k.conname OPERATOR(pg_catalog.=) s.via AND k.contype OPERATOR(pg_catalog.=) 'f'"
     "   WHERE c.depth OPERATOR(pg_catalog.<) 32) "
     "SELECT con FROM chain ORDER BY depth",
     2,
     {INT4OID, OIDOID},
     true,
     SPI_OK_SELECT},
    // kConfigsOfForeignKey: configs that reach a tenant through the foreign
    // key named $2 of table $1
    {"SELECT c.name FROM config_guard.configs c"
     "  JOIN config_guard.config_sources s ON s.config_id OPERATOR(pg_catalog.=) c.config_id"
     " WHERE s.source::pg_catalog.oid OPERATOR(pg_catalog.=) $1 AND s.via OPERATOR(pg_catalog.=) $2"
     " ORDER BY c.name",
     2,
     {OIDOID, NAMEOID},
     true,
     SPI_OK_SELECT},
    // kConfigsCovering: the other configs whose sources include every
    // non-shared source of config $1 (whose builders may call get() of it)
    {"SELECT x.config_id FROM config_guard.configs x"
     " WHERE x.config_id OPERATOR(pg_catalog.<>) $1"
     "   AND NOT EXISTS (SELECT FROM config_guard.config_sources y"
     "                    WHERE y.config_id OPERATOR(pg_catalog.=) $1 AND NOT y.shared"
     "                      AND NOT EXISTS (SELECT FROM config_guard.config_sources s"
     "                                       WHERE s.config_id OPERATOR(pg_catalog.=) x.config_id"
     "                                         AND s.source::pg_catalog.oid OPERATOR(pg_catalog.=)"
     "                                             y.source::pg_catalog.oid))",
     1,
     {INT4OID},
     true,
     SPI_OK_SELECT},
    // kCompact: $1 groups at most -> how many marks were folded. The
    // committed marks of a tenant (those this statement sees) that its stored
    // document has not seen, or all of them if it has none, become one mark:
    // the newest transaction, standing for all of them (weight). A document
    // stale before stays stale; a rebuild that starts after it (the prune
    // fence keeps rebuilds out meanwhile) sees every write the marks stood for.
    {"WITH grouped AS ("
     "  SELECT m.config_id, m.tenant FROM config_guard.invalidations m"
     "   WHERE m.tenant IS NOT NULL"
     "   GROUP BY m.config_id, m.tenant HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 1"
     "   LIMIT $1), "
     "unseen AS ("
     "  SELECT m.ctid AS row_id, m.config_id, m.tenant, m.xid, m.at, m.weight"
     "    FROM config_guard.invalidations m"
     "    JOIN grouped g ON g.config_id OPERATOR(pg_catalog.=) m.config_id"
     "                  AND g.tenant OPERATOR(pg_catalog.=) m.tenant"
     "    LEFT JOIN config_guard.documents d ON d.config_id OPERATOR(pg_catalog.=) m.config_id"
     "                                      AND d.tenant OPERATOR(pg_catalog.=) m.tenant"
     "   WHERE (d.snapshot IS NULL OR NOT pg_catalog.pg_visible_in_snapshot(m.xid, d.snapshot))"
     // this transaction's own marks are not committed: never folded
     "     AND m.xid IS DISTINCT FROM pg_catalog.pg_current_xact_id_if_assigned()"
     "   FOR UPDATE OF m SKIP LOCKED), "
     "folded AS ("
     "  DELETE FROM config_guard.invalidations i USING unseen u WHERE i.ctid OPERATOR(pg_catalog.=) u.row_id"
     "  RETURNING u.config_id, u.tenant, u.xid, u.at, u.weight), "
     "kept AS ("
     "  INSERT INTO config_guard.invalidations (config_id, tenant, xid, at, weight)"
     "  SELECT f.config_id, f.tenant, (pg_catalog.array_agg(f.xid ORDER BY f.xid DESC))[1], pg_catalog.max(f.at),"
     "         pg_catalog.sum(f.weight)::pg_catalog.int8"
     "    FROM folded f GROUP BY f.config_id, f.tenant"
     "  RETURNING 1) "
     "SELECT (SELECT pg_catalog.count(*) FROM folded) OPERATOR(pg_catalog.-) (SELECT pg_catalog.count(*) FROM kept)",
     1,
     {INT8OID},
     false,
     SPI_OK_SELECT},
    // kCompactable: a row if kCompact would fold marks
    {"SELECT 1 FROM config_guard.invalidations m WHERE m.tenant IS NOT NULL"
     " GROUP BY m.config_id, m.tenant HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 1 LIMIT 1",
     0,
     {},
     true,
     SPI_OK_SELECT},
    // kConfigsOfSecondWay: a config with $1 as a child source and $2 as
    // another of its (non-shared) sources
    {"SELECT c.name FROM config_guard.configs c"
     "  JOIN config_guard.config_sources s ON s.config_id OPERATOR(pg_catalog.=) c.config_id"
     "   AND s.source::pg_catalog.oid OPERATOR(pg_catalog.=) $1 AND " CG_COLUMN_ANY("s", "via") " IS NOT NULL"
     " WHERE $1 OPERATOR(pg_catalog.<>) $2"
     "   AND EXISTS (SELECT FROM config_guard.config_sources t WHERE t.config_id OPERATOR(pg_catalog.=) c.config_id"
     "                  AND t.source::pg_catalog.oid OPERATOR(pg_catalog.=) $2"
     "                  AND NOT COALESCE((" CG_COLUMN_ANY("t", "shared") ")::pg_catalog.bool, false))"
     " ORDER BY c.name LIMIT 1",
     2,
     {OIDOID, OIDOID},
     true,
     SPI_OK_SELECT},
    // kEnqueue: $1 config_id, $2 tenants -> the rows queued (one not queued already)
    {"INSERT INTO config_guard.warm_queue (config_id, tenant)"
     " SELECT $1, t.tenant FROM pg_catalog.unnest($2) AS t(tenant) ON CONFLICT DO NOTHING",
     2,
     {INT4OID, TEXTARRAYOID},
     false,
     SPI_OK_INSERT},
    // kStaleDocuments: $1 at most -> config_id, tenant of stored documents a
    // committed mark made stale (driven by the marks, which compaction keeps few)
    {"SELECT s.config_id, s.tenant FROM ("
     "  SELECT d.config_id, d.tenant FROM config_guard.invalidations i"
     "    JOIN config_guard.documents d ON d.config_id OPERATOR(pg_catalog.=) i.config_id"
     "     AND d.tenant OPERATOR(pg_catalog.=) i.tenant"
     "   WHERE NOT pg_catalog.pg_visible_in_snapshot(i.xid, d.snapshot)"
     "  UNION"
     "  SELECT d.config_id, d.tenant FROM config_guard.invalidations i"
     "    JOIN config_guard.documents d ON d.config_id OPERATOR(pg_catalog.=) i.config_id"
     "   WHERE i.tenant IS NULL AND NOT pg_catalog.pg_visible_in_snapshot(i.xid, d.snapshot)) s"
     " LIMIT $1",
     1,
     {INT8OID},
     true,
     SPI_OK_SELECT},
    // kDequeue: $1 at most -> config name, tenant of the oldest queued rows, taken off the queue
    {"DELETE FROM config_guard.warm_queue q USING config_guard.configs c"
     " WHERE c.config_id OPERATOR(pg_catalog.=) q.config_id"
     "   AND (q.config_id, q.tenant) IN (SELECT o.config_id, o.tenant FROM config_guard.warm_queue o"
     "                                    ORDER BY o.queued_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
     " RETURNING c.name, q.tenant",
     1,
     {INT8OID},
     false,
     SPI_OK_DELETE_RETURNING},
    // kUnreadCandidates: $1 age, $2 at most -> config_id, tenant of stored
    // documents built longer ago than $1 (whether they were read since is
    // asked of shared memory)
    // (the documents read since are left out here, so that documents read
    // often can never fill every batch)
    {"SELECT d.config_id, d.tenant FROM config_guard.documents d"
     " WHERE d.built_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) $1)"
     "   AND NOT config_guard.read_since(d.config_id, d.tenant, pg_catalog.now() OPERATOR(pg_catalog.-) $1)"
     " LIMIT $2",
     2,
     {INTERVALOID, INT8OID},
     true,
     SPI_OK_SELECT},
    // kEvict: $1 config_id, $2 tenants, $3 age -> the documents deleted (still
    // built longer ago than $3: not one a rebuild just stored)
    // (rows another transaction holds are skipped; export walks count the
    // documents' folded marks, so the config counts a prune, as kPrune does)
    {"WITH evicted AS ("
     "  DELETE FROM config_guard.documents d"
     "   WHERE d.ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
     "    SELECT e.ctid FROM config_guard.documents e"
     "     WHERE e.config_id OPERATOR(pg_catalog.=) $1 AND e.tenant OPERATOR(pg_catalog.=) ANY ($2)"
     "       AND e.built_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) $3)"
     "     FOR UPDATE SKIP LOCKED))"
     "  RETURNING 1), "
     "bumped AS ("
     "  UPDATE config_guard.configs c SET prunes = c.prunes OPERATOR(pg_catalog.+) 1"
     "   WHERE c.config_id OPERATOR(pg_catalog.=) $1 AND EXISTS (SELECT FROM evicted)) "
     "SELECT pg_catalog.count(*) FROM evicted",
     3,
     {INT4OID, TEXTARRAYOID, INTERVALOID},
     false,
     SPI_OK_SELECT},
    // kExportVersionCurrent
    {"SELECT v.version, v.generation FROM config_guard.export_versions v"
     " WHERE v.config_id OPERATOR(pg_catalog.=) $1 AND v.tenant OPERATOR(pg_catalog.=) $2"
     "   AND v.superseded_at IS NULL"
     " ORDER BY v.version DESC LIMIT 1",
     2,
     {INT4OID, TEXTOID},
     true,
     SPI_OK_SELECT},
    // kExportVersionOf
    {"SELECT v.config_id, v.tenant FROM config_guard.export_versions v WHERE v.version OPERATOR(pg_catalog.=) $1",
     1,
     {INT8OID},
     true,
     SPI_OK_SELECT},
    // kExportVersionId
    {"SELECT pg_catalog.nextval('config_guard.export_version_ids'::pg_catalog.regclass)",
     0,
     {},
     false,
     SPI_OK_SELECT},
    // kExportVersionInsert
    {"WITH superseded AS ("
     "  UPDATE config_guard.export_versions v SET superseded_at = pg_catalog.clock_timestamp()"
     "   WHERE v.config_id OPERATOR(pg_catalog.=) $2 AND v.tenant OPERATOR(pg_catalog.=) $3"
     "     AND v.superseded_at IS NULL) "
     "INSERT INTO config_guard.export_versions"
     " (version, config_id, tenant, generation, row_count, built_at, build_ms)"
     " VALUES ($1, $2, $3, $4, $5, $6, $7)",
     7,
     {INT8OID, INT4OID, TEXTOID, INT8OID, INT8OID, TIMESTAMPTZOID, FLOAT8OID},
     false,
     SPI_OK_INSERT},
    // kExportPage
    {"SELECT r.seq, r.source, r.item FROM config_guard.export_rows r"
     " WHERE r.version OPERATOR(pg_catalog.=) $1 AND r.seq OPERATOR(pg_catalog.>) $2"
     " ORDER BY r.seq LIMIT $3",
     3,
     {INT8OID, INT8OID, INT8OID},
     true,
     SPI_OK_SELECT},
    // kExportVersionsExpired (rows another transaction holds are skipped)
    {"WITH gone AS ("
     "  DELETE FROM config_guard.export_versions v"
     "   WHERE v.version OPERATOR(pg_catalog.=) ANY (ARRAY("
     "    SELECT e.version FROM config_guard.export_versions e"
     "     WHERE e.superseded_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) $1)"
     "     ORDER BY e.superseded_at LIMIT $2 FOR UPDATE SKIP LOCKED))"
     "  RETURNING v.version) "
     "DELETE FROM config_guard.export_rows r USING gone WHERE r.version OPERATOR(pg_catalog.=) gone.version",
     2,
     {INTERVALOID, INT8OID},
     false,
     SPI_OK_DELETE},
    // kForgetExportRows
    {"DELETE FROM config_guard.export_rows r USING config_guard.export_versions v"
     " WHERE v.config_id OPERATOR(pg_catalog.=) $1 AND r.version OPERATOR(pg_catalog.=) v.version",
     1,
     {INT4OID},
     false,
     SPI_OK_DELETE},
};
// clang-format on
static_assert(sizeof(kStatements) / sizeof(kStatements[0]) == static_cast<size_t>(Stmt::kCount),
              "one statement per Stmt");

SPIPlanPtr plans[static_cast<int>(Stmt::kCount)];
Oid cached_owner = InvalidOid;

IdentityScope EnterGateway() {
  IdentityScope scope(ExtensionOwner());
  scope.Pin("search_path", kSafeSearchPath);
  return scope;
}

// Prepared inside the scope, so that even the first planning sees only the
// pinned search_path; the plan cache replans under the same path.
SPIPlanPtr PlanOf(Stmt stmt) {
  SPIPlanPtr* slot = &plans[static_cast<int>(stmt)];
  if (*slot == nullptr) {
    const Statement& s = kStatements[static_cast<int>(stmt)];
    // Fixed queries on small indexed tables: the generic plan is the right
    // one, and planning on every call would cost more than the query.
    SPIPlanPtr plan = SPI_prepare_cursor(s.sql, s.nargs, const_cast<Oid*>(s.types), CURSOR_OPT_GENERIC_PLAN);
    if (plan == nullptr) elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
    SPI_keepplan(plan);
    *slot = plan;
  }
  return *slot;
}

// On while a gateway statement runs; cleared by the abort of the
// (sub)transaction it failed in.
CommandFlag in_gateway;

}  // namespace

bool InGateway() { return in_gateway.on; }

void InitGateway() { in_gateway.ClearOnAbort(); }

void ForgetExtensionOwner() { cached_owner = InvalidOid; }

Oid ExtensionOwner() {
  if (OidIsValid(cached_owner)) return cached_owner;
  HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(ConfigsTable()));
  if (!HeapTupleIsValid(tuple)) elog(ERROR, "cache lookup failed for config_guard.configs");
  cached_owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple))->relowner;
  ReleaseSysCache(tuple);
  return cached_owner;
}

uint64 RunAsOwner(Stmt stmt, Datum* values, const char* nulls, Snapshot snapshot) {
  const Statement& s = kStatements[static_cast<int>(stmt)];
  const CommandFlag previous = in_gateway.Raise();
  IdentityScope scope = EnterGateway();
  const int rc = snapshot == nullptr ? SPI_execute_plan(PlanOf(stmt), values, nulls, s.read_only, 0)
                                     : SPI_execute_snapshot(PlanOf(stmt), values, nulls, snapshot, InvalidSnapshot,
                                                            s.read_only, true, 0);
  scope.Leave();
  in_gateway.Restore(previous);
  if (rc != s.expected)
    elog(ERROR, "config_guard internal statement %d failed: %s", static_cast<int>(stmt), SPI_result_code_string(rc));
  return SPI_processed;
}

void UtilityAsOwner(const char* sql) {
  const CommandFlag previous = in_gateway.Raise();
  IdentityScope scope = EnterGateway();
  const int rc = SPI_execute(sql, false, 0);
  scope.Leave();
  in_gateway.Restore(previous);
  if (rc != SPI_OK_UTILITY) elog(ERROR, "config_guard internal command failed: %s", SPI_result_code_string(rc));
}

}  // namespace config_guard

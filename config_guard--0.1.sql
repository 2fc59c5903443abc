\echo Use "CREATE EXTENSION config_guard" to load this file. \quit

-- Registry ------------------------------------------------------------------
-- Written only by define() and undefine(), which check the caller's rights
-- and then write as the tables' owner. Dumped by pg_dump.

CREATE SEQUENCE config_guard.config_id_seq AS integer;

CREATE TABLE config_guard.configs (
    config_id     integer PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    builder       regprocedure NOT NULL,
    tenant_column name NOT NULL,
    tenant_type   regtype NOT NULL,
    owner         regrole NOT NULL,
    defined_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE config_guard.configs IS 'configs defined with config_guard.define(), a row each';

CREATE TABLE config_guard.config_sources (
    config_id integer NOT NULL REFERENCES config_guard.configs ON DELETE CASCADE,
    position  smallint NOT NULL,
    source    regclass NOT NULL,
    PRIMARY KEY (config_id, position)
);
COMMENT ON TABLE config_guard.config_sources IS 'source tables of each config, in export order';

SELECT pg_catalog.pg_extension_config_dump('config_guard.configs', '');
SELECT pg_catalog.pg_extension_config_dump('config_guard.config_sources', '');
SELECT pg_catalog.pg_extension_config_dump('config_guard.config_id_seq', '');

GRANT USAGE ON SCHEMA config_guard TO PUBLIC;
REVOKE ALL ON config_guard.configs, config_guard.config_sources, config_guard.config_id_seq FROM PUBLIC;
GRANT SELECT ON config_guard.configs, config_guard.config_sources TO PUBLIC;

-- Defining configs -------------------------------------------------------------

CREATE FUNCTION config_guard.define(config text, builder regprocedure, sources regclass[],
                                    tenant_column name DEFAULT 'tenant_id')
RETURNS void
AS 'MODULE_PATHNAME', 'config_guard_define'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION config_guard.define(text, regprocedure, regclass[], name) IS
  'define a config: a builder (tenant) -> jsonb over source tables keyed by tenant_column';

CREATE FUNCTION config_guard.undefine(config text)
RETURNS void
AS 'MODULE_PATHNAME', 'config_guard_undefine'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION config_guard.undefine(text) IS 'remove a config defined with config_guard.define()';

-- Keyset export ------------------------------------------------------------------

CREATE FUNCTION config_guard.export_page(config text, tenant anyelement, after text DEFAULT NULL,
                                         page_size integer DEFAULT 1000)
RETURNS TABLE (source regclass, item jsonb, cursor text)
AS 'MODULE_PATHNAME', 'config_guard_export_page'
LANGUAGE C STABLE ROWS 1000;
COMMENT ON FUNCTION config_guard.export_page(text, anyelement, text, integer) IS
  'one page of a tenant''s rows across the config''s sources; pass the last cursor as after for the next page';

CREATE FUNCTION config_guard.export_sql(config text)
RETURNS TABLE (source regclass, first_page text, next_page text)
AS 'MODULE_PATHNAME', 'config_guard_export_sql'
LANGUAGE C STABLE;
COMMENT ON FUNCTION config_guard.export_sql(text) IS 'the queries export_page runs for each source of a config';

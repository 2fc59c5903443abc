-- The queries export_page runs: one index seek plus the page, at any depth.
-- No Sort, no OFFSET, no sequential scan, for the first and the next pages.
\set ECHO all
SET client_min_messages = warning;
CREATE SCHEMA pln;
SET search_path = pln, public;

CREATE TABLE flags (tenant_id bigint NOT NULL, flag_id int NOT NULL, payload text,
                    PRIMARY KEY (tenant_id, flag_id));
CREATE TABLE rules (rule_id uuid PRIMARY KEY, tenant_id bigint NOT NULL, area text NOT NULL);
CREATE INDEX rules_keyset ON rules (tenant_id, rule_id);
INSERT INTO flags SELECT t, f, repeat('x', 50) FROM generate_series(1, 20) t, generate_series(1, 2000) f;
INSERT INTO rules SELECT gen_random_uuid(), t, 'a' FROM generate_series(1, 20) t, generate_series(1, 500);
ANALYZE flags, rules;
CREATE FUNCTION build(tenant bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('shop', 'build(bigint)', ARRAY['flags', 'rules']::regclass[]);

SELECT source, first_page, next_page FROM config_guard.export_sql('shop');

-- Plans of those queries, generic (as kept by export_page) and custom.
CREATE FUNCTION plan_of(query text, types text, args text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  EXECUTE format('PREPARE q(%s) AS %s', types, query);
  FOR line IN EXECUTE format('EXPLAIN (COSTS OFF) EXECUTE q(%s)', args) LOOP
    RETURN NEXT line;
  END LOOP;
  DEALLOCATE q;
END $$;

SET plan_cache_mode = force_generic_plan;
SELECT plan_of(first_page, 'bigint, bigint', '7, 1000') FROM config_guard.export_sql('shop') WHERE source = 'flags'::regclass;
SELECT plan_of(next_page, 'bigint, bigint, int', '7, 1000, 1500') FROM config_guard.export_sql('shop') WHERE source = 'flags'::regclass;
SELECT plan_of(next_page, 'bigint, bigint, uuid', '7, 1000, ''7f000000-0000-0000-0000-000000000000''')
  FROM config_guard.export_sql('shop') WHERE source = 'rules'::regclass;

-- Even where one tenant owns the whole table, the generic plan seeks the index.
CREATE TABLE solo (tenant_id bigint NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
INSERT INTO solo SELECT 1, g FROM generate_series(1, 50000) g;
ANALYZE solo;
SELECT config_guard.define('solo', 'build(bigint)', ARRAY['solo']::regclass[]);
SELECT plan_of(next_page, 'bigint, bigint, int', '1, 1000, 49500') FROM config_guard.export_sql('solo');
RESET plan_cache_mode;

-- The same as a check that fails loudly, for every query of both configs.
SELECT count(*) AS plans,
       count(*) FILTER (WHERE plan !~ 'Index Scan') AS plans_without_index_scan,
       count(*) FILTER (WHERE plan ~ 'Sort|Seq Scan|Bitmap') AS plans_with_sort_or_full_scan
  FROM (SELECT string_agg(line, E'\n') AS plan
          FROM config_guard.export_sql('shop') q,
               LATERAL (SELECT set_config('plan_cache_mode', 'force_generic_plan', true)) s,
               LATERAL plan_of(q.next_page,
                               CASE WHEN q.source = 'rules'::regclass THEN 'bigint, bigint, uuid' ELSE 'bigint, bigint, int' END,
                               CASE WHEN q.source = 'rules'::regclass THEN '3, 100, ''00000000-0000-0000-0000-000000000000'''
                                    ELSE '3, 100, 10' END) AS line
         GROUP BY q.source) p;


SELECT config_guard.undefine('solo');
SELECT config_guard.undefine('shop');
DROP SCHEMA pln CASCADE;
RESET client_min_messages;

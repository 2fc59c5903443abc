-- Keyset export against OFFSET paging and against one ordered query, on one
-- tenant of :rows rows. Every figure is a median of interleaved rounds, and
-- every comparison is a ratio measured in the same run.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;
SET search_path = bench, public;
SET bench.rows = :'rows';
SET bench.rounds = :'rounds';
-- off: every page reads the sources (the keyset query itself); on: pages come
-- from the tenant's export version, made once before the timings
SET config_guard.export_versions = :'versions';

CREATE TABLE config_items (
  tenant_id bigint NOT NULL,
  item_id   bigint NOT NULL,
  kind      text NOT NULL,
  payload   jsonb NOT NULL,
  PRIMARY KEY (tenant_id, item_id)
);
-- the large tenant, plus smaller tenants around it in the same index
INSERT INTO config_items
SELECT t, g, 'flag', jsonb_build_object('key', 'feature_' || g, 'enabled', g % 3 = 0, 'rollout', g % 100)
  FROM (VALUES (1), (3)) v(t), generate_series(1, 20000) g;
INSERT INTO config_items
SELECT 2, g, 'flag', jsonb_build_object('key', 'feature_' || g, 'enabled', g % 3 = 0, 'rollout', g % 100)
  FROM generate_series(1, :rows) g;
VACUUM ANALYZE config_items;
CREATE FUNCTION build(tenant bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('bench', 'build(bigint)', ARRAY['config_items']::regclass[]);

-- Milliseconds to fetch one keyset page after `after`.
CREATE FUNCTION keyset_page_ms(after text, page int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp(); n int := 0; r record;
BEGIN
  FOR r IN SELECT * FROM config_guard.export_page('bench', 2::bigint, after, page) LOOP n := n + 1; END LOOP;
  IF n <> page THEN RAISE EXCEPTION 'short page: % rows', n; END IF;
  RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END $$;

-- Milliseconds to fetch one OFFSET page at depth `skip`.
CREATE FUNCTION offset_page_ms(skip bigint, page int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp(); n int := 0; r record;
BEGIN
  FOR r IN SELECT to_jsonb(s.*) AS item FROM config_items s WHERE tenant_id = 2
            ORDER BY tenant_id, item_id OFFSET skip LIMIT page LOOP n := n + 1; END LOOP;
  IF n <> page THEN RAISE EXCEPTION 'short page: % rows', n; END IF;
  RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END $$;

-- Seconds for a whole keyset walk; checks it returned every row.
CREATE FUNCTION keyset_walk_s(page int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp(); after text; total bigint := 0; got int; r record;
BEGIN
  LOOP
    got := 0;
    FOR r IN SELECT * FROM config_guard.export_page('bench', 2::bigint, after, page) LOOP
      got := got + 1; after := r.cursor;
    END LOOP;
    EXIT WHEN got = 0;
    total := total + got;
  END LOOP;
  IF total <> current_setting('bench.rows')::bigint THEN RAISE EXCEPTION 'walk returned % rows', total; END IF;
  RETURN extract(epoch FROM clock_timestamp() - t0);
END $$;

-- Seconds for one ordered query over the same rows, consumed the same way.
CREATE FUNCTION ordered_query_s() RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp(); total bigint := 0; last jsonb; r record;
BEGIN
  FOR r IN SELECT to_jsonb(s.*) AS item FROM config_items s WHERE tenant_id = 2 ORDER BY tenant_id, item_id LOOP
    total := total + 1; last := r.item;
  END LOOP;
  IF total <> current_setting('bench.rows')::bigint THEN RAISE EXCEPTION 'query returned % rows', total; END IF;
  RETURN extract(epoch FROM clock_timestamp() - t0);
END $$;

CREATE FUNCTION median(float8[]) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
  SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest($1) x $$;

-- The cursor just before the last page.
CREATE TEMP TABLE last_cursor (cursor text);
DO $$
DECLARE after text; r record; n bigint := 0; target bigint := current_setting('bench.rows')::bigint - 1000;
BEGIN
  WHILE n < target LOOP
    FOR r IN SELECT * FROM config_guard.export_page('bench', 2::bigint, after, 10000) LOOP
      n := n + 1; after := r.cursor;
      EXIT WHEN n = target;
    END LOOP;
  END LOOP;
  INSERT INTO last_cursor VALUES (after);
END $$;

CREATE TEMP TABLE results (metric text, value float8);
DO $$
DECLARE
  rows bigint := current_setting('bench.rows')::bigint;
  last text := (SELECT cursor FROM last_cursor);
  first_ms float8[] := '{}'; last_ms float8[] := '{}';
  off_first float8[] := '{}'; off_last float8[] := '{}';
  walk_s float8[] := '{}'; query_s float8[] := '{}';
  sampled float8 := 0; d bigint;
BEGIN
  PERFORM ordered_query_s();  -- warm-up
  FOR round IN 1..current_setting('bench.rounds')::int LOOP
    FOR i IN 1..20 LOOP
      first_ms := first_ms || keyset_page_ms(NULL, 1000);
      last_ms := last_ms || keyset_page_ms(last, 1000);
    END LOOP;
    off_first := off_first || offset_page_ms(0, 1000);
    off_last := off_last || offset_page_ms(rows - 1000, 1000);
    walk_s := walk_s || keyset_walk_s(1000);
    query_s := query_s || ordered_query_s();
  END LOOP;
  -- OFFSET paging of the whole walk: pages at 11 evenly spaced depths, summed
  -- by the trapezoid rule (page cost grows linearly with depth).
  FOR k IN 0..10 LOOP
    d := (rows - 1000) * k / 10;
    sampled := sampled + offset_page_ms(d, 1000) * (CASE WHEN k IN (0, 10) THEN 0.5 ELSE 1 END);
  END LOOP;
  INSERT INTO results VALUES
    ('keyset first page ms', median(first_ms)), ('keyset last page ms', median(last_ms)),
    ('offset first page ms', median(off_first)), ('offset last page ms', median(off_last)),
    ('keyset walk s', median(walk_s)), ('ordered query s', median(query_s)),
    ('offset walk s (estimated)', sampled / 10 * (rows / 1000) / 1000);
END $$;

\pset footer off
SELECT metric, round(value::numeric, 3) AS value FROM results;
WITH v AS (SELECT jsonb_object_agg(metric, value) AS m FROM results)
SELECT round(((m ->> 'keyset last page ms')::float8 / (m ->> 'keyset first page ms')::float8)::numeric, 2)
         AS keyset_last_over_first,
       round(((m ->> 'keyset walk s')::float8 / (m ->> 'ordered query s')::float8)::numeric, 2)
         AS keyset_walk_over_one_query,
       round(((m ->> 'offset last page ms')::float8 / (m ->> 'offset first page ms')::float8)::numeric, 1)
         AS offset_last_over_first,
       round(((m ->> 'offset walk s (estimated)')::float8 / (m ->> 'keyset walk s')::float8)::numeric, 1)
         AS offset_walk_over_keyset_walk
  FROM v;

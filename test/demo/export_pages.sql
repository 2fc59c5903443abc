-- The large tenant exported page by page with config_guard.export_page, and
-- the same rows read with OFFSET pagination, the way the incident's service did.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET search_path = app, public;

-- One OFFSET page of one source, in primary-key order: the database reads and
-- discards `skip` rows before returning any.
CREATE FUNCTION pg_temp.offset_page(source int, skip bigint, lim int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE n int := 0; r record;
BEGIN
  FOR r IN EXECUTE format('SELECT to_jsonb(s) AS item FROM %s s WHERE tenant_id = 1 ORDER BY %s OFFSET $1 LIMIT $2',
                          (ARRAY['app.experiments', 'app.feature_flags', 'app.segments'])[source],
                          (ARRAY['experiment_id', 'flag_key', 'segment_id'])[source])
    USING skip, lim LOOP
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;

CREATE TEMP TABLE page_times (page int PRIMARY KEY, rows_so_far bigint, keyset_ms float8, offset_ms float8);
DO $$
DECLARE
  after text; r record; got int; page int := 0; total bigint := 0; t0 timestamptz; k float8; o float8;
  page_size int := 1000; src int := 1; skip bigint := 0; filled int; n int;
BEGIN
  LOOP
    page := page + 1;
    got := 0;
    t0 := clock_timestamp();
    FOR r IN SELECT * FROM config_guard.export_page('customer_config', 1::bigint, after, page_size) LOOP
      got := got + 1; after := r.cursor;
    END LOOP;
    k := extract(epoch FROM clock_timestamp() - t0) * 1000;
    EXIT WHEN got = 0;
    -- OFFSET paging of the same rows: each page re-reads every earlier row
    t0 := clock_timestamp();
    filled := 0;
    WHILE filled < page_size AND src <= 3 LOOP
      n := pg_temp.offset_page(src, skip, page_size - filled);
      filled := filled + n;
      skip := skip + n;
      IF filled < page_size THEN src := src + 1; skip := 0; END IF;
    END LOOP;
    IF filled <> got THEN RAISE EXCEPTION 'page %: keyset gave % rows, OFFSET %', page, got, filled; END IF;
    o := extract(epoch FROM clock_timestamp() - t0) * 1000;
    total := total + got;
    INSERT INTO page_times VALUES (page, total, k, o);
  END LOOP;
END $$;

\echo
\echo 'Time per page, tenant 1, page size 1000 (every 10th page):'
SELECT page, rows_so_far, round(keyset_ms::numeric, 2) AS keyset_ms, round(offset_ms::numeric, 2) AS offset_ms,
       round((offset_ms / keyset_ms)::numeric, 1) AS offset_over_keyset
  FROM page_times WHERE page % 10 = 1 OR page = (SELECT max(page) FROM page_times) ORDER BY page;
\echo 'Whole walk:'
SELECT count(*) AS pages, sum(rows_so_far) FILTER (WHERE page = (SELECT max(page) FROM page_times)) AS rows,
       round(sum(keyset_ms)::numeric / 1000, 2) AS keyset_s, round(sum(offset_ms)::numeric / 1000, 2) AS offset_s,
       round((sum(offset_ms) / sum(keyset_ms))::numeric, 1) AS offset_over_keyset
  FROM page_times;

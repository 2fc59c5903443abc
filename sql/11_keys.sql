-- Canonical keys: a tenant, and each export key, is the same key in every
-- session whatever its settings, so a write always invalidates what a reader
-- looks up; types whose equal values differ in their binary form are refused.
\set ECHO all
SET client_min_messages = warning;
CREATE SCHEMA keys;
SET search_path = keys, public;

-- a timestamptz tenant written under one TimeZone and read under another
CREATE TABLE by_time (tenant_id timestamptz NOT NULL, id int NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id));
INSERT INTO by_time VALUES ('2024-01-01 12:00+00', 1, 'old');
CREATE FUNCTION build_time(tenant timestamptz) RETURNS jsonb LANGUAGE sql STABLE AS
$$ SELECT jsonb_build_object('v', (SELECT string_agg(v, ',' ORDER BY id) FROM keys.by_time WHERE tenant_id = tenant)) $$;
SELECT config_guard.define('by_time', 'build_time(timestamptz)', ARRAY['by_time']::regclass[]);
SET TimeZone = 'UTC';
SELECT config_guard.get('by_time', '2024-01-01 12:00+00'::timestamptz);
SET TimeZone = 'America/New_York';
UPDATE by_time SET v = 'new';
SET TimeZone = 'Asia/Tokyo';
SELECT config_guard.get('by_time', '2024-01-01 12:00+00'::timestamptz);
RESET TimeZone;

-- a date tenant under different DateStyles
CREATE TABLE by_day (tenant_id date NOT NULL, id int NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id));
INSERT INTO by_day VALUES ('2024-01-02', 1, 'old');
CREATE FUNCTION build_day(tenant date) RETURNS jsonb LANGUAGE sql STABLE AS
$$ SELECT jsonb_build_object('v', (SELECT string_agg(v, ',' ORDER BY id) FROM keys.by_day WHERE tenant_id = tenant)) $$;
SELECT config_guard.define('by_day', 'build_day(date)', ARRAY['by_day']::regclass[]);
SELECT config_guard.get('by_day', '2024-01-02'::date);
SET DateStyle = 'German';
UPDATE by_day SET v = 'new';
RESET DateStyle;
SELECT config_guard.get('by_day', '2024-01-02'::date);

-- the stored keys: readable where the type's output is canonical, the image
-- (the datum's bytes) otherwise
SELECT c.name, d.tenant FROM config_guard.documents d JOIN config_guard.configs c USING (config_id)
 WHERE c.name IN ('by_time', 'by_day') ORDER BY 1, 2;

-- an export walk over timestamp keys, with DateStyle changed between pages
CREATE TABLE events (tenant_id int NOT NULL, at timestamp NOT NULL, PRIMARY KEY (tenant_id, at));
INSERT INTO events SELECT 1, timestamp '2024-01-01' + g * interval '1 day' FROM generate_series(1, 6) g;
CREATE FUNCTION build_events(tenant int) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('events', 'build_events(int)', ARRAY['events']::regclass[]);
SELECT cursor AS c FROM config_guard.export_page('events', 1, NULL, 2) OFFSET 1 \gset
SET DateStyle = 'SQL, DMY';
SELECT cursor AS c FROM config_guard.export_page('events', 1, :'c', 2) OFFSET 1 \gset
SET DateStyle = 'German';
SELECT item ->> 'at' AS at FROM config_guard.export_page('events', 1, :'c', 10);
RESET DateStyle;

-- refused: equal values with different images (char(n) compares 'ab' and
-- 'ab  ' equal; numeric 1.0 and 1.00; float8 0 and -0; a case-blind collation
-- 'A' and 'a')
CREATE TABLE by_code (tenant_id char(4) NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE FUNCTION build_code(tenant char(4)) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('by_code', 'build_code(char)', ARRAY['by_code']::regclass[]);
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE by_amount (tenant_id numeric NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE FUNCTION build_amount(tenant numeric) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('by_amount', 'build_amount(numeric)', ARRAY['by_amount']::regclass[]);
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE by_score (tenant_id int NOT NULL, score float8 NOT NULL, PRIMARY KEY (tenant_id, score));
CREATE FUNCTION build_score(tenant int) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('by_score', 'build_score(int)', ARRAY['by_score']::regclass[]);
\echo :LAST_ERROR_SQLSTATE
CREATE COLLATION case_blind (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE by_name (tenant_id text COLLATE case_blind NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE FUNCTION build_name(tenant text) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('by_name', 'build_name(text)', ARRAY['by_name']::regclass[]);
\echo :LAST_ERROR_SQLSTATE

-- a tenant key longer than the limit: a clear error before any build, and
-- writes of such rows still work
CREATE TABLE by_label (tenant_id text NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE FUNCTION build_label(tenant text) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('by_label', 'build_label(text)', ARRAY['by_label']::regclass[]);
SELECT config_guard.get('by_label', repeat('x', 3000));
\echo :LAST_ERROR_SQLSTATE
INSERT INTO by_label VALUES (repeat('y', 2500), 1);
SELECT builder_runs FROM config_guard.config_stats WHERE config = 'by_label';

-- a READ ONLY transaction builds without storing, as REPEATABLE READ does
INSERT INTO by_label VALUES ('ro', 1);
BEGIN READ ONLY;
SELECT config_guard.get('by_label', 'ro'::text);
COMMIT;
SELECT count(*) AS stored FROM config_guard.documents d JOIN config_guard.configs c USING (config_id)
 WHERE c.name = 'by_label' AND d.tenant = 'ro';

-- as drivers pass a tenant: an untyped parameter, or a quoted literal
PREPARE untyped AS SELECT config_guard.get('by_label', $1);
EXECUTE untyped('ro');
SELECT config_guard.get('by_day', '2024-01-02') ->> 'v' AS quoted_literal;
PREPARE untyped_page AS SELECT count(*) FROM config_guard.export_page('events', $1, NULL, $2);
EXECUTE untyped_page('1', 10);
DEALLOCATE untyped;
DEALLOCATE untyped_page;

-- intervals out of range are errors, not overflows
SELECT config_guard.get('by_label', 'ro'::text, max_stale => interval '178000000 years');
\echo :LAST_ERROR_SQLSTATE

SELECT config_guard.undefine(name) FROM config_guard.configs WHERE name IN
  ('by_time', 'by_day', 'events', 'by_label') ORDER BY name;
DROP SCHEMA keys CASCADE;
RESET client_min_messages;

-- Child sources: tables without the tenant column that reach it through
-- foreign keys (variations -> experiments.account_id). define() finds the
-- chain; a write to a child invalidates the tenants of its rows' parents, as
-- they are when it commits. get() always equals a direct builder call.
\set ECHO all
SET client_min_messages = notice;
CREATE SCHEMA ab;
CREATE TABLE ab.accounts (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE ab.experiments (id int PRIMARY KEY, account_id int NOT NULL REFERENCES ab.accounts ON DELETE CASCADE,
                             name text NOT NULL);
CREATE TABLE ab.variations (id int PRIMARY KEY,
                            experiment_id int NOT NULL REFERENCES ab.experiments ON DELETE CASCADE,
                            weight int NOT NULL);
-- two levels down, hash-partitioned
CREATE TABLE ab.variation_params (variation_id int NOT NULL REFERENCES ab.variations ON DELETE CASCADE,
                                  key text NOT NULL, value text, PRIMARY KEY (variation_id, key))
  PARTITION BY HASH (variation_id);
CREATE TABLE ab.variation_params_0 PARTITION OF ab.variation_params FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE ab.variation_params_1 PARTITION OF ab.variation_params FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO ab.accounts VALUES (1, 'one'), (2, 'two'), (3, 'three');
INSERT INTO ab.experiments VALUES (10, 1, 'e10'), (20, 2, 'e20'), (30, 3, 'e30');
INSERT INTO ab.variations VALUES (100, 10, 50), (101, 10, 50), (200, 20, 100), (300, 30, 100);
INSERT INTO ab.variation_params VALUES (100, 'color', 'red'), (200, 'color', 'blue');
CREATE FUNCTION ab.build(tenant int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object(
    'experiments', (SELECT jsonb_agg(jsonb_build_object(
        'id', e.id, 'name', e.name,
        'variations', (SELECT jsonb_agg(jsonb_build_object(
            'id', v.id, 'weight', v.weight,
            'params', (SELECT jsonb_object_agg(p.key, p.value) FROM ab.variation_params p WHERE p.variation_id = v.id))
            ORDER BY v.id) FROM ab.variations v WHERE v.experiment_id = e.id)) ORDER BY e.id)
      FROM ab.experiments e WHERE e.account_id = tenant)) $$;
-- a parent needs a unique index with the column that ties it to its tenant:
-- moving it to another tenant then waits for its children's writes
SELECT config_guard.define('ab', 'ab.build(int)',
                           ARRAY['ab.experiments', 'ab.variations', 'ab.variation_params']::regclass[], 'account_id');
CREATE UNIQUE INDEX ON ab.experiments (account_id, id);
SELECT config_guard.define('ab', 'ab.build(int)',
                           ARRAY['ab.experiments', 'ab.variations', 'ab.variation_params']::regclass[], 'account_id');
CREATE UNIQUE INDEX ON ab.variations (experiment_id, id);
-- the children are found, and said
SELECT config_guard.define('ab', 'ab.build(int)',
                           ARRAY['ab.experiments', 'ab.variations', 'ab.variation_params']::regclass[], 'account_id');
SET client_min_messages = warning;
SELECT source, position, shared, via FROM config_guard.config_sources
 WHERE config_id = (SELECT config_id FROM config_guard.configs WHERE name = 'ab') ORDER BY position;
CREATE FUNCTION ab.fresh() RETURNS bool LANGUAGE sql AS
$$ SELECT bool_and(config_guard.get('ab', t) = ab.build(t)) FROM generate_series(1, 3) t $$;
SELECT ab.fresh();
-- every write path on a child
INSERT INTO ab.variations VALUES (102, 10, 0);
SELECT ab.fresh();
UPDATE ab.variations SET weight = weight + 1 WHERE experiment_id = 10;
SELECT ab.fresh();
-- a variation moved to another tenant's experiment: both tenants
UPDATE ab.variations SET experiment_id = 20 WHERE id = 101;
SELECT ab.fresh();
DELETE FROM ab.variations WHERE id = 102;
SELECT ab.fresh();
COPY ab.variations FROM STDIN;
103	30	7
\.
SELECT ab.fresh();
INSERT INTO ab.variations VALUES (103, 30, 8) ON CONFLICT (id) DO UPDATE SET weight = excluded.weight;
SELECT ab.fresh();
MERGE INTO ab.variations v USING (VALUES (104, 20, 1), (103, 30, 9)) AS s(id, e, w) ON v.id = s.id
  WHEN MATCHED THEN UPDATE SET weight = s.w WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.e, s.w);
SELECT ab.fresh();
-- two levels down, straight into a partition
INSERT INTO ab.variation_params_0 VALUES (101, 'size', 'xl');
SELECT ab.fresh();
UPDATE ab.variation_params SET value = 'green' WHERE key = 'color';
SELECT ab.fresh();
-- a parent moves to another tenant: its children go with it
UPDATE ab.experiments SET account_id = 3 WHERE id = 20;
SELECT ab.fresh();
-- savepoints
BEGIN;
SAVEPOINT s;
INSERT INTO ab.variations VALUES (105, 30, 5);
ROLLBACK TO SAVEPOINT s;
INSERT INTO ab.variations VALUES (106, 10, 6);
COMMIT;
SELECT ab.fresh();
-- cascades from the tenant's own row
DELETE FROM ab.experiments WHERE id = 10;
SELECT ab.fresh();
DELETE FROM ab.accounts WHERE id = 3;
SELECT ab.fresh();
TRUNCATE ab.variation_params;
SELECT ab.fresh();
SELECT config_guard.get('ab', 1), config_guard.get('ab', 2), config_guard.get('ab', 3);

-- the writer needs no right on the parents: the lookup runs as the child's owner
CREATE ROLE ab_writer;
GRANT USAGE ON SCHEMA ab TO ab_writer;
GRANT INSERT, UPDATE ON ab.variations TO ab_writer;
INSERT INTO ab.accounts VALUES (4, 'four');
INSERT INTO ab.experiments VALUES (40, 4, 'e40');
SELECT config_guard.get('ab', 4);
CREATE SCHEMA ab_writer AUTHORIZATION ab_writer;
SET ROLE ab_writer;
-- (an equality operator of its own on its search_path changes nothing)
CREATE FUNCTION ab_writer.always(int, int) RETURNS bool LANGUAGE sql AS $$ SELECT true $$;
CREATE OPERATOR ab_writer.= (LEFTARG = int, RIGHTARG = int, FUNCTION = ab_writer.always);
SET search_path = ab_writer, pg_catalog;
INSERT INTO ab.variations VALUES (400, 40, 1);
RESET search_path;
RESET ROLE;
SELECT config_guard.get('ab', 4);
SELECT ab.fresh();

-- a child row whose parent the lookup cannot see (a deferred foreign key,
-- its parent inserted later in the transaction) invalidates every tenant
ALTER TABLE ab.variations ALTER CONSTRAINT variations_experiment_id_fkey DEFERRABLE INITIALLY DEFERRED;
SELECT config_guard.get('ab', 1), config_guard.get('ab', 2);
BEGIN;
INSERT INTO ab.variations VALUES (500, 50, 5);
INSERT INTO ab.experiments VALUES (50, 2, 'e50');
COMMIT;
SELECT ab.fresh();
ALTER TABLE ab.variations ALTER CONSTRAINT variations_experiment_id_fkey NOT DEFERRABLE;
-- a parent's unique index dropped: its children's writes invalidate every
-- tenant, and say so
CREATE INDEX experiments_plain ON ab.experiments (account_id, id);
DROP INDEX ab.experiments_account_id_id_idx;
INSERT INTO ab.variations VALUES (501, 50, 1);
SELECT ab.fresh();
CREATE UNIQUE INDEX ON ab.experiments (account_id, id);
DROP INDEX ab.experiments_plain;
INSERT INTO ab.variations VALUES (502, 50, 1);
SELECT ab.fresh();

-- a child's foreign key columns order its export pages: their type must
-- have one binary form per value, as every key column's (so its equality
-- operator is one of pg_catalog's, which no role can add to)
CREATE EXTENSION citext SCHEMA ab;
CREATE TABLE ab.cx (id int PRIMARY KEY, code ab.citext NOT NULL UNIQUE, account_id int NOT NULL,
                    UNIQUE (account_id, id));
CREATE TABLE ab.cy (id int PRIMARY KEY, code ab.citext NOT NULL REFERENCES ab.cx (code));
CREATE FUNCTION ab.build_cx(tenant int) RETURNS jsonb LANGUAGE sql STABLE AS $$ SELECT '[]'::jsonb $$;
SELECT config_guard.define('cx', 'ab.build_cx(int)', ARRAY['ab.cx', 'ab.cy']::regclass[], 'account_id');
DROP TABLE ab.cy, ab.cx;
DROP EXTENSION citext;

-- export_page pages a child's rows too: each tenant's walk, one row per page,
-- returns exactly its rows of every source, children through their parents
CREATE FUNCTION ab.walk(tenant int) RETURNS SETOF jsonb LANGUAGE plpgsql AS $$
DECLARE
  after text;
  r record;
  got int;
BEGIN
  LOOP
    got := 0;
    FOR r IN SELECT * FROM config_guard.export_page('ab', tenant, after, 1) LOOP
      RETURN NEXT jsonb_build_object('source', r.source::text, 'item', r.item);
      after := r.cursor;
      got := got + 1;
    END LOOP;
    EXIT WHEN got = 0;
  END LOOP;
END $$;
CREATE FUNCTION ab.direct(tenant int) RETURNS SETOF jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('source', 'ab.experiments', 'item', to_jsonb(e)) FROM ab.experiments e
   WHERE e.account_id = tenant
  UNION ALL
  SELECT jsonb_build_object('source', 'ab.variations', 'item', to_jsonb(v)) FROM ab.variations v
    JOIN ab.experiments e ON e.id = v.experiment_id WHERE e.account_id = tenant
  UNION ALL
  SELECT jsonb_build_object('source', 'ab.variation_params', 'item', to_jsonb(p)) FROM ab.variation_params p
    JOIN ab.variations v ON v.id = p.variation_id JOIN ab.experiments e ON e.id = v.experiment_id
   WHERE e.account_id = tenant $$;
INSERT INTO ab.accounts VALUES (5, 'five');
INSERT INTO ab.experiments VALUES (51, 5, 'e51'), (52, 5, 'e52');
INSERT INTO ab.variations SELECT 5000 + g, 51 + g % 2, g FROM generate_series(1, 7) g;
INSERT INTO ab.variation_params SELECT 5000 + g, k, 'v' FROM generate_series(1, 7) g, unnest(ARRAY['a', 'b']) k;
SELECT t, (SELECT count(*) FROM ab.walk(t)) AS rows,
       (SELECT array_agg(x ORDER BY x::text) FROM ab.walk(t) x)
         IS NOT DISTINCT FROM (SELECT array_agg(x ORDER BY x::text) FROM ab.direct(t) x)
         AS same
  FROM unnest(ARRAY[1, 2, 4, 5]) t;
-- the order of a child's pages: its foreign key, then its primary key
SELECT string_agg(x->'item'->>'id', ',') FROM ab.walk(5) x WHERE x->>'source' = 'ab.variations';

-- the lookup reads each parent as a foreign key check does: as the parent
-- table's owner (the child's owner may change), comparing under the parent
-- column's collation
CREATE ROLE ab_migrator;
CREATE TABLE ab.teams (code text COLLATE "C" PRIMARY KEY, account_id int NOT NULL, UNIQUE (account_id, code));
CREATE TABLE ab.members (code text COLLATE "POSIX" NOT NULL REFERENCES ab.teams, id int NOT NULL,
                         PRIMARY KEY (code, id));
INSERT INTO ab.teams VALUES ('red', 1), ('blue', 2);
CREATE FUNCTION ab.build_teams(tenant int) RETURNS jsonb LANGUAGE sql STABLE AS
$$ SELECT coalesce(jsonb_agg(m.id ORDER BY m.id), '[]') FROM ab.members m
      JOIN ab.teams t ON t.code = m.code COLLATE "C" WHERE t.account_id = tenant $$;
SELECT config_guard.define('teams', 'ab.build_teams(int)', ARRAY['ab.teams', 'ab.members']::regclass[], 'account_id');
SELECT config_guard.get('teams', 1), config_guard.get('teams', 2);
INSERT INTO ab.members VALUES ('red', 1), ('blue', 2);
SELECT config_guard.get('teams', 1) = ab.build_teams(1) AND config_guard.get('teams', 2) = ab.build_teams(2) AS fresh;
GRANT USAGE ON SCHEMA ab TO ab_migrator;
GRANT REFERENCES ON ab.teams TO ab_migrator;
ALTER TABLE ab.members OWNER TO ab_migrator;
INSERT INTO ab.members VALUES ('blue', 3);
SELECT config_guard.get('teams', 2) = ab.build_teams(2) AS fresh;
ALTER TABLE ab.members OWNER TO CURRENT_USER;
SELECT config_guard.undefine('teams');
DROP TABLE ab.members, ab.teams;
DROP OWNED BY ab_migrator;
DROP ROLE ab_migrator;

-- what define() explains
CREATE TABLE ab.orphans (id int PRIMARY KEY, note text);
SELECT config_guard.define('bad', 'ab.build(int)', ARRAY['ab.experiments', 'ab.orphans']::regclass[], 'account_id');
SELECT config_guard.define('bad', 'ab.build(int)', ARRAY['ab.variations']::regclass[], 'account_id');
CREATE TABLE ab.posts (id int PRIMARY KEY, account_id int NOT NULL);
CREATE UNIQUE INDEX ON ab.posts (account_id, id);
CREATE TABLE ab.comments (id int PRIMARY KEY, post_id int REFERENCES ab.posts,
                          experiment_id int REFERENCES ab.experiments);
SELECT config_guard.define('bad', 'ab.build(int)', ARRAY['ab.experiments', 'ab.posts', 'ab.comments']::regclass[],
                           'account_id');
-- its chain stays: the foreign key can be neither dropped nor renamed
-- nor can it gain a second way to a tenant
ALTER TABLE ab.variation_params ADD COLUMN experiment_id int REFERENCES ab.experiments;
ALTER TABLE ab.variations DROP CONSTRAINT variations_experiment_id_fkey;
ALTER TABLE ab.variations RENAME CONSTRAINT variations_experiment_id_fkey TO renamed;
ALTER TABLE ab.variations DROP COLUMN experiment_id;
DROP TABLE ab.experiments CASCADE;

SELECT config_guard.undefine('ab');
-- once undefined, the foreign key is the table's own business
ALTER TABLE ab.variations RENAME CONSTRAINT variations_experiment_id_fkey TO renamed;
SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'config_guard_%'
   AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'ab'::regnamespace);
DROP SCHEMA ab CASCADE;
DROP SCHEMA ab_writer CASCADE;
DROP ROLE ab_writer;

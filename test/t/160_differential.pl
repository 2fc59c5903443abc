# The differential checker: pgbench clients write at random through many paths
# (INSERT, multi-row INSERT, UPDATE, a primary-key UPDATE cascading to a
# child table, DELETE cascading, INSERT ... ON CONFLICT, MERGE, a row moved to
# another tenant, a write straight into a partition, savepoints rolled back,
# two-phase commit, rows of a child source without the tenant column written
# and moved while their parents move, a shared source) on a hash-partitioned
# source, a source with a foreign key to it, a parent with its child source
# and a shared source, and after
# every transaction compare get() of each tenant it touched with a direct
# builder call. Each client owns its tenants, so the comparison does not
# depend on when the other clients commit. CG_DIFF_SECONDS (default 30) sets
# the length; run it longer on demand.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ConfigGuard::Test;

my $seconds = $ENV{CG_DIFF_SECONDS} || 30;
my $clients = 4;
my $node = preloaded_node('differential', 'max_prepared_transactions = 10',
  'config_guard.rebuild_alert_per_minute = 1000000');
$node->safe_psql('postgres', q{
  CREATE EXTENSION config_guard;
  CREATE TABLE flags (account_id int NOT NULL, id int NOT NULL, val int NOT NULL, PRIMARY KEY (account_id, id))
    PARTITION BY HASH (account_id);
  CREATE TABLE flags_0 PARTITION OF flags FOR VALUES WITH (MODULUS 4, REMAINDER 0);
  CREATE TABLE flags_1 PARTITION OF flags FOR VALUES WITH (MODULUS 4, REMAINDER 1);
  CREATE TABLE flags_2 PARTITION OF flags FOR VALUES WITH (MODULUS 4, REMAINDER 2);
  CREATE TABLE flags_3 PARTITION OF flags FOR VALUES WITH (MODULUS 4, REMAINDER 3);
  CREATE TABLE rules (account_id int NOT NULL, flag_id int NOT NULL, id int NOT NULL, val int NOT NULL,
                      PRIMARY KEY (account_id, flag_id, id),
                      FOREIGN KEY (account_id, flag_id) REFERENCES flags ON DELETE CASCADE ON UPDATE CASCADE);
  -- a normalized pair: variations have no account_id and reach it through experiments
  CREATE TABLE experiments (id int PRIMARY KEY, account_id int NOT NULL, val int NOT NULL);
  CREATE UNIQUE INDEX ON experiments (account_id, id);
  CREATE TABLE variations (id serial PRIMARY KEY,
                           experiment_id int NOT NULL REFERENCES experiments ON DELETE CASCADE, val int NOT NULL);
  CREATE INDEX ON variations (experiment_id, id);
  -- a table every account reads (a plan per client, so that each client's
  -- comparisons depend on its own writes only)
  CREATE TABLE plans (id int PRIMARY KEY, quota int NOT NULL);
  INSERT INTO plans SELECT p, 10 * p FROM generate_series(0, 5) p;
  INSERT INTO flags SELECT t, f, 0 FROM generate_series(1, 20) t, generate_series(1, 5) f;
  INSERT INTO rules SELECT account_id, id, r, 0 FROM flags, generate_series(1, 3) r;
  INSERT INTO experiments SELECT 10 * t + e, t, 0 FROM generate_series(1, 25) t, generate_series(1, 3) e;
  INSERT INTO variations (experiment_id, val) SELECT id, v FROM experiments, generate_series(1, 2) v;
  CREATE FUNCTION build(account int) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
      'flags', (SELECT jsonb_agg(jsonb_build_array(id, val) ORDER BY id) FROM flags WHERE account_id = account),
      'rules', (SELECT jsonb_agg(jsonb_build_array(flag_id, id, val) ORDER BY flag_id, id)
                  FROM rules WHERE account_id = account),
      'experiments', (SELECT jsonb_agg(jsonb_build_array(e.id, e.val,
                          (SELECT jsonb_agg(jsonb_build_array(v.id, v.val) ORDER BY v.id)
                             FROM variations v WHERE v.experiment_id = e.id)) ORDER BY e.id)
                        FROM experiments e WHERE e.account_id = account),
      'quota', (SELECT quota FROM plans WHERE id = (account - 1) / 5)) $$;
  SET client_min_messages = warning;
  SELECT config_guard.define('cfg', 'build(int)', ARRAY['flags', 'rules', 'experiments', 'variations']::regclass[],
                             'account_id', ARRAY['plans']::regclass[]);
  CREATE TABLE checks (n bigint NOT NULL);
  INSERT INTO checks VALUES (0);
  -- raises (and so aborts the pgbench client) when get() and the builder differ
  CREATE FUNCTION cg_check(VARIADIC accounts int[]) RETURNS void LANGUAGE plpgsql AS $$
  DECLARE a int; got jsonb; want jsonb;
  BEGIN
    FOREACH a IN ARRAY accounts LOOP
      got := config_guard.get('cfg', a);
      want := build(a);
      IF got IS DISTINCT FROM want THEN
        RAISE EXCEPTION 'stale document for account %: get() % builder %', a, got, want USING ERRCODE = 'XX000';
      END IF;
    END LOOP;
    UPDATE checks SET n = n + pg_catalog.cardinality(accounts);
  END $$;
});

my $dir = PostgreSQL::Test::Utils::tempdir;
# client k owns accounts 5k+1 .. 5k+5
my $own = "\\set t 5 * :client_id + random(1, 5)\n\\set u 5 * :client_id + random(1, 5)\n"
  . "\\set f random(1, 8)\n\\set r random(1, 4)\n\\set v random(1, 1000000)\n";
my %scripts = (
  insert => q{INSERT INTO flags VALUES (:t, 100 + :v % 50, :v) ON CONFLICT DO NOTHING;
SELECT cg_check(:t);},
  insert_many => q{INSERT INTO rules SELECT account_id, id, 10 + :v % 7, :v FROM flags WHERE account_id = :t ON CONFLICT DO NOTHING;
SELECT cg_check(:t);},
  update => q{UPDATE flags SET val = :v WHERE account_id = :t AND id = :f;
SELECT cg_check(:t);},
  cascade_update => q{UPDATE flags SET id = 1000 + :v % 100000 WHERE account_id = :t AND id = :f
  AND NOT EXISTS (SELECT FROM flags WHERE account_id = :t AND id = 1000 + :v % 100000);
SELECT cg_check(:t);},
  cascade_delete => q{DELETE FROM flags WHERE account_id = :t AND id = (SELECT max(id) FROM flags WHERE account_id = :t);
INSERT INTO flags VALUES (:t, :f, :v) ON CONFLICT DO NOTHING;
SELECT cg_check(:t);},
  upsert => q{INSERT INTO rules SELECT account_id, id, :r, :v FROM flags WHERE account_id = :t AND id = :f
  ON CONFLICT (account_id, flag_id, id) DO UPDATE SET val = EXCLUDED.val;
SELECT cg_check(:t);},
  merge => q{MERGE INTO rules r USING (SELECT account_id, id FROM flags WHERE account_id = :t) f
  ON r.account_id = f.account_id AND r.flag_id = f.id AND r.id = :r
  WHEN MATCHED AND :v % 3 = 0 THEN DELETE
  WHEN MATCHED THEN UPDATE SET val = :v
  WHEN NOT MATCHED THEN INSERT VALUES (f.account_id, f.id, :r, :v);
SELECT cg_check(:t);},
  move => q{UPDATE flags SET account_id = :u, id = 200000 + :v WHERE account_id = :t AND id = :f
  AND NOT EXISTS (SELECT FROM flags WHERE account_id = :u AND id = 200000 + :v);
SELECT cg_check(:t, :u);},
  partition => q{UPDATE flags_0 SET val = :v WHERE account_id = :t;
UPDATE flags_1 SET val = :v WHERE account_id = :t;
DELETE FROM flags_2 WHERE account_id = :t AND id = :f;
INSERT INTO flags_3 SELECT :t, :f, :v WHERE satisfies_hash_partition('flags'::regclass, 4, 3, :t) ON CONFLICT DO NOTHING;
SELECT cg_check(:t);},
  savepoint => q{BEGIN;
UPDATE flags SET val = :v WHERE account_id = :t;
SAVEPOINT s;
DELETE FROM rules WHERE account_id = :t;
SELECT cg_check(:t);
ROLLBACK TO s;
UPDATE rules SET val = :v WHERE account_id = :t AND id = :r;
COMMIT;
SELECT cg_check(:t);},
  child_insert => q{INSERT INTO variations (experiment_id, val)
  SELECT id, :v FROM experiments WHERE account_id = :t ORDER BY id LIMIT 1 OFFSET :r % 2;
SELECT cg_check(:t);},
  child_change => q{UPDATE variations SET val = :v WHERE experiment_id IN (SELECT id FROM experiments WHERE account_id = :t);
DELETE FROM variations WHERE id = (SELECT min(v.id) FROM variations v JOIN experiments e ON e.id = v.experiment_id
                                    WHERE e.account_id = :t AND v.val % 3 = 0);
SELECT cg_check(:t);},
  child_move => q{UPDATE variations SET experiment_id = (SELECT min(id) FROM experiments WHERE account_id = :u)
 WHERE id = (SELECT max(v.id) FROM variations v JOIN experiments e ON e.id = v.experiment_id WHERE e.account_id = :t)
   AND EXISTS (SELECT FROM experiments WHERE account_id = :u);
SELECT cg_check(:t, :u);},
  parent_move => q{UPDATE experiments SET account_id = :u, val = :v
 WHERE id = (SELECT max(id) FROM experiments WHERE account_id = :t);
SELECT cg_check(:t, :u);},
  shared => q{UPDATE plans SET quota = :v WHERE id = :client_id;
SELECT cg_check(:t, :u);},
  two_phase => q{BEGIN;
UPDATE rules SET val = :v WHERE account_id = :t AND flag_id = :f;
PREPARE TRANSACTION 'cg-:client_id-:v';
COMMIT PREPARED 'cg-:client_id-:v';
SELECT cg_check(:t);},
);
my @args;
for my $name (sort keys %scripts) {
  PostgreSQL::Test::Utils::append_to_file("$dir/$name.sql", $own . $scripts{$name} . "\n");
  push @args, '-f', "$dir/$name.sql";
}
my ($out, $err) = ('', '');
IPC::Run::run([ 'pgbench', '-n', '-M', 'simple', '-h', $node->host, '-p', $node->port, '-c', $clients,
                '-j', 2, '-T', $seconds, @args, 'postgres' ], '>', \$out, '2>', \$err);
my $exit = $? >> 8;
is($exit, 0, "pgbench ran $seconds s with no client aborted") or diag($err);
unlike($err, qr/stale document/, 'no stale document') or diag($err);
my ($tx) = $out =~ /number of transactions actually processed: (\d+)/;
cmp_ok($tx // 0, '>=', 100, "transactions: " . ($tx // 0));
my $checks = $node->safe_psql('postgres', 'SELECT n FROM checks');
cmp_ok($checks, '>=', $tx // 1, "get() compared with the builder $checks times");
is($node->safe_psql('postgres', q{SELECT count(*) FROM generate_series(1, 25) a
                                   WHERE config_guard.get('cfg', a) IS DISTINCT FROM build(a)}),
  '0', 'every account fresh at the end');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0', 'no prepared transaction left');
is($node->safe_psql('postgres', q{SELECT sum(builder_runs) > 0 FROM config_guard.config_stats}), 't',
  'documents were rebuilt');
unlike(slurp_file($node->logfile), qr/terminated by signal|TRAP:|PANIC/, 'no crash in the server log');
$node->stop;
done_testing();

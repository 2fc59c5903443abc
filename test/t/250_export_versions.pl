# Export versions over time and on every exit path: a superseded version is
# readable for config_guard.export_version_ttl, then the background cleanup
# drops it (its cursors fail with 40001); a version cut off by
# statement_timeout, a cancel or a terminated backend leaves no rows behind and
# its lock free; walks of an unchanged tenant by many sessions make one version.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ConfigGuard::Test;

my $node = preloaded_node('export_versions', 'config_guard.cleanup_interval = 1s',
  'config_guard.export_version_ttl = 3s', 'max_prepared_transactions = 2');
$node->safe_psql('postgres', q{
  CREATE EXTENSION config_guard;
  CREATE TABLE items (tenant_id int NOT NULL, id int NOT NULL, v int NOT NULL, PRIMARY KEY (tenant_id, id));
  INSERT INTO items SELECT t, g, 0 FROM generate_series(1, 2) t, generate_series(1, 100) g;
  INSERT INTO items SELECT 3, g, 0 FROM generate_series(1, 300000) g;
  CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE sql STABLE AS $$ SELECT '{}'::jsonb $$;
  SELECT config_guard.define('cfg', 'build(int)', ARRAY['items']::regclass[]);
});
sub versions { $node->safe_psql('postgres', q{SELECT versions || '/' || current_versions || '/' || rows
                                                  FROM config_guard.export_version_stats WHERE config = 'cfg'}) }

# -- The TTL ---------------------------------------------------------------------------
my $old = $node->safe_psql('postgres', q{SELECT cursor FROM config_guard.export_page('cfg', 1, NULL, 10) OFFSET 9});
$node->safe_psql('postgres', q{UPDATE items SET v = 1 WHERE tenant_id = 1 AND id = 50});
is($node->safe_psql('postgres', q{SELECT count(*) FROM config_guard.export_page('cfg', 1, NULL, 1000)}), '100',
  'a new walk after a write');
is(versions(), '2/1/200', 'made a second version; the first is kept for the walk in progress');
is($node->safe_psql('postgres', qq{SELECT count(*) FILTER (WHERE item ->> 'v' = '0') || '/' || count(*)
                                     FROM config_guard.export_page('cfg', 1, '$old', 1000)}),
  '90/90', 'the walk in progress goes on in its version (the write is not in it)');
my $start = time;
usleep(200_000) while versions() ne '1/1/100' && time - $start < 30;
is(versions(), '1/1/100', sprintf('the cleanup dropped the superseded version (%.1f s after it was replaced)',
  time - $start));
my ($rc, $out, $err) = $node->psql('postgres', qq{SELECT count(*) FROM config_guard.export_page('cfg', 1, '$old', 10)});
like($err, qr/export version \d+ of tenant 1 in config "cfg" is gone/, 'its cursor then fails');
like($err, qr/HINT:  Restart the export from the first page/, 'with the hint to start again');
is($node->safe_psql('postgres', q{SELECT count(*) FROM config_guard.export_rows r
                                   WHERE NOT EXISTS (SELECT FROM config_guard.export_versions v
                                                      WHERE v.version = r.version)}), '0', 'no row left of it');

# -- Cut off while making a version ----------------------------------------------------------
my $rows_before = $node->safe_psql('postgres', 'SELECT count(*) FROM config_guard.export_rows');
($rc, $out, $err) = $node->psql('postgres',
  q{SET statement_timeout = '50ms'; SELECT count(*) FROM config_guard.export_page('cfg', 3, NULL, 10)});
like($err, qr/canceling statement due to statement timeout/, 'statement_timeout cuts a 300,000-row version short');
is($node->safe_psql('postgres', 'SELECT count(*) FROM config_guard.export_rows'), $rows_before, 'no row of it stays');

# A session that makes a version is stopped while it holds the tenant's export
# lock: a source column's cast to json (the owner's code, run while the rows
# are turned into items) sleeps while the owner's switch says so.
$node->safe_psql('postgres', q{
  CREATE TABLE switch (sleep bool NOT NULL);
  INSERT INTO switch VALUES (true);
  CREATE TYPE pace AS ENUM ('fast', 'slow');
  CREATE FUNCTION pace_json(p pace) RETURNS json LANGUAGE plpgsql AS $$
  BEGIN
    IF p = 'slow' AND (SELECT sleep FROM public.switch) THEN PERFORM pg_sleep(60); END IF;
    RETURN to_json(p::text);
  END $$;
  CREATE CAST (pace AS json) WITH FUNCTION pace_json(pace);
  CREATE TABLE paced (tenant_id int NOT NULL, id int NOT NULL, p pace NOT NULL, PRIMARY KEY (tenant_id, id));
  INSERT INTO paced VALUES (1, 1, 'fast'), (1, 2, 'slow'), (1, 3, 'fast');
  SELECT config_guard.define('paced', 'build(int)', ARRAY['paced']::regclass[]);
});
sub stop_while_making {
  my ($how) = @_;
  $node->safe_psql('postgres', q{UPDATE switch SET sleep = true});
  my $rows_before = $node->safe_psql('postgres', 'SELECT count(*) FROM config_guard.export_rows');
  my $victim = $node->background_psql('postgres', on_error_stop => 0);
  # (known by its query: the builder's settings hide the application_name it set)
  $victim->query_until(qr/sent/, "\\echo sent\n"
    . "SELECT count(*) AS victim FROM config_guard.export_page('paced', 1, NULL, 10);\n");
  $node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity
                                         WHERE query LIKE '%AS victim%' AND wait_event = 'PgSleep'})
    or die 'the victim never reached the slow cast';
  is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                                     WHERE a.query LIKE '%AS victim%' AND a.pid <> pg_backend_pid() AND l.locktype = 'advisory'
                                       AND l.granted AND l.mode = 'ExclusiveLock'}), '1',
    "$how: the session making the version holds the tenant's export lock");
  $node->safe_psql('postgres', qq{SELECT pg_${how}_backend(pid) FROM pg_stat_activity
                                   WHERE query LIKE '%AS victim%' AND pid <> pg_backend_pid()});
  $node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM pg_stat_activity
                                         WHERE query LIKE '%AS victim%' AND state = 'active'
                                           AND pid <> pg_backend_pid()})
    or die 'the victim did not stop';
  eval { $victim->quit };  # (its psql is gone after a terminate)
  is($node->safe_psql('postgres', 'SELECT count(*) FROM config_guard.export_rows'), $rows_before,
    "$how: no row of its version stays");
  $node->safe_psql('postgres', q{UPDATE switch SET sleep = false});
  is($node->safe_psql('postgres', q{SET config_guard.rebuild_wait_timeout = 0;
                                     SELECT string_agg(item ->> 'p', ',')
                                       FROM config_guard.export_page('paced', 1, NULL, 10)}), 'fast,slow,fast',
    "$how: the next walk makes the version at once (the lock went with the session's transaction)");
  $node->safe_psql('postgres', q{UPDATE paced SET id = id WHERE tenant_id = 1 AND id = 1});
}
stop_while_making('cancel');
stop_while_making('terminate');

# -- A session that made a version and keeps its transaction open -------------------------------
# Nobody waits for it past rebuild_wait_timeout: the others read page by page.
$node->safe_psql('postgres', q{UPDATE items SET v = v + 1 WHERE tenant_id = 1 AND id = 1});
my $holder = $node->background_psql('postgres', on_error_stop => 0);
$holder->query_safe(q{BEGIN; SELECT count(*) FROM config_guard.export_page('cfg', 1, NULL, 10)});
my $versions_held = versions();
my $t0 = time;
is($node->safe_psql('postgres', q{SET config_guard.rebuild_wait_timeout = '300ms';
                                   SELECT count(*) FROM config_guard.export_page('cfg', 1, NULL, 1000)}), '100',
  'another walk is served while a leader keeps its transaction open');
cmp_ok(time - $t0, '<', 5, sprintf('after the wait (%.1f s)', time - $t0));
is(versions(), $versions_held, 'from the sources, page by page (the open version is not visible)');
# ... and it cannot be prepared, which would carry the lock past the session
my ($prc, $pout, $perr);
$holder->query(q{PREPARE TRANSACTION 'holds_a_version'});
like($holder->{stderr}, qr/cannot PREPARE a transaction that made an export version/, 'PREPARE TRANSACTION is refused');
$holder->quit;
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0', 'nothing prepared');
is($node->safe_psql('postgres', q{SET config_guard.rebuild_wait_timeout = 0;
                                   SELECT count(*) FROM config_guard.export_page('cfg', 1, NULL, 1000)}), '100',
  'and the next walk makes the version');
# a version made in a subtransaction that rolled back leaves nothing to hold
$node->safe_psql('postgres', q{UPDATE items SET v = v + 1 WHERE tenant_id = 1 AND id = 1});
$node->safe_psql('postgres', q{BEGIN; SAVEPOINT s; SELECT count(*) FROM config_guard.export_page('cfg', 1, NULL, 10);
                               ROLLBACK TO s; PREPARE TRANSACTION 'rolled_back_version'; COMMIT PREPARED 'rolled_back_version'});
pass('a transaction whose version was rolled back with its subtransaction is prepared');
($prc, $pout, $perr) = $node->psql('postgres', q{BEGIN; SAVEPOINT s; SELECT count(*) FROM config_guard.export_page('cfg', 1, NULL, 10);
                                                  RELEASE s; PREPARE TRANSACTION 'kept_version'});
like($perr, qr/cannot PREPARE a transaction that made an export version/, 'one kept by RELEASE is not');
# a transaction that only read a version may be prepared
$node->safe_psql('postgres', q{SELECT count(*) FROM config_guard.export_page('cfg', 1, NULL, 10)});
$node->safe_psql('postgres', q{BEGIN; SELECT count(*) FROM config_guard.export_page('cfg', 1, NULL, 10);
                               PREPARE TRANSACTION 'reads_only'; COMMIT PREPARED 'reads_only'});
pass('a transaction that read a version is prepared and committed');

# -- Many walks of an unchanged tenant: one version ------------------------------------------------
$node->safe_psql('postgres', q{UPDATE items SET v = 2 WHERE tenant_id = 2 AND id = 1});
my $script = $node->basedir . '/walk.sql';
append_to_file($script, "SELECT count(*) FROM config_guard.export_page('cfg', 2, NULL, 1000);\n");
my $made_before = $node->safe_psql('postgres', q{SELECT count(*) FROM config_guard.export_versions WHERE tenant = '2'});
$node->command_ok([ 'pgbench', '-n', '-c', '8', '-j', '2', '-t', '50', '-f', $script, 'postgres' ],
  '8 sessions walk tenant 2, 50 times each');
is($node->safe_psql('postgres', q{SELECT count(*) FROM config_guard.export_versions WHERE tenant = '2'}) - $made_before,
  1, '400 walks of the unchanged tenant made one version');

my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|PANIC|cleanup of database .* stopped/, 'no crash, the cleanup never stopped');
$node->stop;
done_testing();

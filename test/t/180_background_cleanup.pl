# The background cleanup: a launcher (one per cluster) starts a cleanup worker
# per database in turn; where config_guard is installed the worker prunes the
# marks of tenants without a document, so writes nobody reads leave no marks
# behind without a cron job. Databases without the extension, or with an
# older version of it, are left alone; documents stay fresh throughout.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ConfigGuard::Test;

my $node = preloaded_node('cleanup', 'config_guard.cleanup_interval = 1', 'config_guard.cleanup_age = 0');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'config_guard launcher'}),
  '1', 'one launcher, visible in pg_stat_activity');

$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('postgres', 'CREATE DATABASE old_version');
$node->safe_psql('old_version', q{CREATE EXTENSION config_guard VERSION '0.3'});
$node->safe_psql('app', q{
  CREATE EXTENSION config_guard;
  CREATE TABLE items (tenant_id int NOT NULL, id int NOT NULL, v int NOT NULL, PRIMARY KEY (tenant_id, id));
  INSERT INTO items SELECT t, 1, 0 FROM generate_series(1, 500) t;
  CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE sql STABLE
    AS $$ SELECT jsonb_build_object('v', (SELECT sum(v) FROM items WHERE tenant_id = tenant)) $$;
  SELECT config_guard.define('cfg', 'build(int)', ARRAY['items']::regclass[]);
  SELECT config_guard.get('cfg', 1);
});

# 2,000 write transactions over 500 tenants nobody reads (and tenant 1, read)
my $script = $node->basedir . '/writes.sql';
append_to_file($script, "\\set t random(1, 500)\nUPDATE items SET v = v + 1 WHERE tenant_id = :t AND id = 1;\n");
$node->command_ok([ 'pgbench', '-n', '-c', '4', '-t', '500', '-f', $script, 'app' ], '2,000 write transactions');
$node->safe_psql('app', q{UPDATE items SET v = v + 1 WHERE tenant_id = 1});

ok($node->poll_query_until('app', q{SELECT count(*) FILTER (WHERE tenant <> '1') = 0 FROM config_guard.invalidations}),
  'within the poll, the marks of tenants without a document are gone');
is($node->safe_psql('app', q{SELECT count(*) > 0 FROM config_guard.invalidations WHERE tenant = '1'}), 't',
  'the marks that make a stored document stale stay');
is($node->safe_psql('app', q{SELECT config_guard.get('cfg', 1) = build(1)}), 't', 'and that document is rebuilt');
is($node->safe_psql('old_version', q{SELECT extversion FROM pg_extension WHERE extname = 'config_guard'}), '0.3',
  'a database with an older version is left alone');

# a database whose owner made every session read-only is still cleaned
$node->safe_psql('postgres', 'ALTER DATABASE app SET default_transaction_read_only = on');
$node->safe_psql('app', q{SET default_transaction_read_only = off; UPDATE items SET v = v + 1 WHERE tenant_id = 3});
ok($node->poll_query_until('app', q{SELECT count(*) = 0 FROM config_guard.invalidations WHERE tenant = '3'}),
  'ALTER DATABASE ... SET default_transaction_read_only = on does not stop the cleanup');
$node->safe_psql('postgres', 'ALTER DATABASE app RESET default_transaction_read_only');

# a backlog is worked off in batches, and DROP DATABASE never waits for the
# cleanup in its way
$node->safe_psql('postgres', 'CREATE DATABASE dropme');
$node->safe_psql('dropme', q{
  CREATE EXTENSION config_guard;
  INSERT INTO config_guard.invalidations (config_id, tenant, xid, at)
  SELECT 1, g::text, '1'::xid8, now() - interval '1 day' FROM generate_series(1, 300000) g;
});
$node->poll_query_until('postgres', q{SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = 'dropme'
                                       AND backend_type = 'config_guard cleanup'})
  or diag('the cleanup was not seen in dropme');
my ($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE dropme');
is($rc, 0, 'DROP DATABASE while the cleanup works off a backlog there') or diag($err);

# cleanup off: marks stay
$node->safe_psql('postgres', q{ALTER SYSTEM SET config_guard.cleanup_interval = 0; SELECT pg_reload_conf()});
sleep 2;
$node->safe_psql('app', q{UPDATE items SET v = v + 1 WHERE tenant_id = 2});
sleep 3;
is($node->safe_psql('app', q{SELECT count(*) FROM config_guard.invalidations WHERE tenant = '2'}), '1',
  'with config_guard.cleanup_interval = 0 nothing is pruned');

$node->stop;
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|PANIC/, 'no crash in the server log');
# (exit code 1 only when DROP DATABASE asked the worker there to leave, or
# dropped the database between the launcher's listing and the visit)
my $failed = () = $log =~ /"config_guard cleanup" \(PID \d+\) exited with exit code [1-9]/g;
my $explained = () = $log =~ /FATAL:  (terminating background worker "config_guard cleanup"|database \d+ does not exist)/g;
is($failed, $explained, 'no cleanup worker failed for another reason');
unlike($log, qr/ERROR:.*prune_invalidations|no background worker slot|cleanup of database .* stopped/,
  'no cleanup error');
done_testing();

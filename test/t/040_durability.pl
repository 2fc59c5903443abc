# Documents survive a restart and a crash (kill -9 of a backend): afterwards
# fresh documents are served without running the builder. A terminated leader
# frees its waiters: one of them takes over.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ConfigGuard::Test;

my $node = preloaded_node('durable', "restart_after_crash = on");

$node->safe_psql('postgres', q{
  CREATE EXTENSION config_guard;
  CREATE TABLE items (tenant_id int NOT NULL, id int NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id));
  INSERT INTO items SELECT t, g, 'v' || g FROM generate_series(1, 50) t, generate_series(1, 20) g;
  CREATE SEQUENCE runs;
  CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM nextval('runs');
    PERFORM pg_advisory_xact_lock_shared(4242);
    RETURN jsonb_build_object('v', (SELECT string_agg(v, ',' ORDER BY id) FROM items WHERE tenant_id = tenant));
  END $$;
  SELECT config_guard.define('items', 'build(int)', ARRAY['items']::regclass[]);
  SELECT count(config_guard.get('items', t)) FROM generate_series(1, 50) t;
});
my $runs = q{SELECT last_value FROM runs};
my $all = q{SELECT count(*) FILTER (WHERE config_guard.get('items', t) ->> 'v' LIKE 'v1,v2,%') FROM generate_series(1, 50) t};
is($node->safe_psql('postgres', $runs), '50', 'one builder run per tenant to warm up');
is($node->safe_psql('postgres', $all), '50', 'all documents served');
is($node->safe_psql('postgres', $runs), '50', 'hits run no builder');

$node->restart;
is($node->safe_psql('postgres', $all), '50', 'all documents served after a restart');
is($node->safe_psql('postgres', $runs), '50', 'without running the builder after a restart');

# A crash: kill -9 of a backend makes the postmaster reset shared memory.
my $victim = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $victim->query_safe('SELECT pg_backend_pid()');
kill 'KILL', $pid;
eval { $victim->quit };  # its psql may already be gone
$node->poll_query_until('postgres', 'SELECT 1', '1') or die 'server did not come back after the crash';
# ("server process (PID n)" before 18, "client backend (PID n)" since)
like(slurp_file($node->logfile), qr/\(PID $pid\) was terminated by signal 9/, 'the backend crashed');
is($node->safe_psql('postgres', $all), '50', 'all documents served after crash recovery');
is($node->safe_psql('postgres', $runs), '50', 'without running the builder after crash recovery');

# A write still invalidates after all that.
$node->safe_psql('postgres', q{UPDATE items SET v = 'changed' WHERE tenant_id = 7 AND id = 1});
is($node->safe_psql('postgres', q{SELECT config_guard.get('items', 7) ->> 'v' LIKE 'changed,%'}), 't',
  'fresh after commit');
is($node->safe_psql('postgres', $runs), '51', 'one run for the one invalidated tenant');

# A terminated leader: its waiter takes over instead of hanging.
$node->safe_psql('postgres', q{SELECT config_guard.invalidate('items', 9)});
my $gate = $node->background_psql('postgres');
$gate->query_safe('SELECT pg_advisory_lock(4242)');
my $leader = $node->background_psql('postgres', on_error_stop => 0);
my $leader_pid = $leader->query_safe('SELECT pg_backend_pid()');
$leader->query_until(qr/sent/, "\\echo sent\nSELECT config_guard.get('items', 9);\n");
$node->poll_query_until('postgres', qq{SELECT wait_event = 'advisory' FROM pg_stat_activity WHERE pid = $leader_pid})
  or die 'leader is not building';
my $waiter = $node->background_psql('postgres');
my $waiter_pid = $waiter->query_safe('SELECT pg_backend_pid()');
$waiter->query_until(qr/sent/, "\\echo sent\nSELECT 'waiter got ' || (config_guard.get('items', 9) ->> 'v');\n");
$node->poll_query_until('postgres', qq{SELECT count(*) = 1 FROM pg_locks
                                        WHERE pid = $waiter_pid AND NOT granted AND locktype = 'advisory' AND objsubid = 3})
  or die 'waiter is not waiting for the leader';
$node->safe_psql('postgres', "SELECT pg_terminate_backend($leader_pid)");
# the waiter now leads, and its builder waits for the gate in turn
$node->poll_query_until('postgres', qq{SELECT wait_event = 'advisory' AND NOT EXISTS
                                        (SELECT FROM pg_locks WHERE pid = $waiter_pid AND NOT granted AND objsubid = 3)
                                         FROM pg_stat_activity WHERE pid = $waiter_pid})
  or die 'waiter did not take over';
$gate->query_safe('SELECT pg_advisory_unlock(4242)');
like($waiter->query_safe("SELECT 'done'"), qr/waiter got v1,v2/, 'the waiter took over and got the document');
is($node->safe_psql('postgres', $runs), '53', 'the terminated leader and the waiter each ran the builder once');
eval { $leader->quit };  # its backend was terminated
$waiter->quit;
$gate->quit;

$node->stop;
done_testing();

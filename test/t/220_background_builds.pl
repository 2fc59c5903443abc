# Background builds: config_guard.warm() queues every tenant of a config and
# the background worker builds each once, at config_guard.background_build_rate;
# refresh-ahead rebuilds the stored documents a commit made stale, so the next
# readers get hits; both go through get(), one build per invalidation.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ConfigGuard::Test;

my $node = preloaded_node('background_builds', 'config_guard.cleanup_interval = 1', 'config_guard.refresh_ahead = on');
$node->safe_psql('postgres', q{
  CREATE EXTENSION config_guard;
  CREATE TABLE items (tenant_id int NOT NULL, id int NOT NULL, v int NOT NULL, PRIMARY KEY (tenant_id, id));
  INSERT INTO items SELECT t, g, 0 FROM generate_series(1, 200) t, generate_series(1, 3) g;
  CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE sql STABLE
    AS $$ SELECT jsonb_build_object('v', (SELECT sum(v) FROM items WHERE tenant_id = tenant)) $$;
  SELECT config_guard.define('cfg', 'build(int)', ARRAY['items']::regclass[]);
  CREATE ROLE stranger LOGIN;
});
my $stats = q{SELECT builder_runs || ',' || hits || ',' || misses FROM config_guard.config_stats WHERE config = 'cfg'};

is($node->safe_psql('postgres', q{SELECT config_guard.warm('cfg')}), '200', 'warm() queues every tenant');
ok($node->poll_query_until('postgres', q{SELECT queued = 0 FROM config_guard.warm_progress WHERE config = 'cfg'}),
  'the queue is worked off');
is($node->safe_psql('postgres', q{SELECT count(*) FROM config_guard.documents}), '200', 'every tenant stored');
is($node->safe_psql('postgres', $stats), '200,0,200', 'one build per tenant');
is($node->safe_psql('postgres', q{SELECT background_builds || ',' || wasted_refreshes FROM config_guard.config_stats
                                   WHERE config = 'cfg'}), '200,0', 'counted as background builds');
is($node->safe_psql('postgres', q{SELECT count(*) FROM generate_series(1, 200) t
                                   WHERE config_guard.get('cfg', t) IS DISTINCT FROM build(t)}), '0',
  'every stored document equals the builder');

# warming again builds nothing: every document is fresh
is($node->safe_psql('postgres', q{SELECT config_guard.warm('cfg')}), '200', 'warm() again');
ok($node->poll_query_until('postgres', q{SELECT queued = 0 FROM config_guard.warm_progress WHERE config = 'cfg'}),
  'worked off again');
is((split /,/, $node->safe_psql('postgres', $stats))[0], '200', 'without a build');

# refresh-ahead: ten tenants written; the worker rebuilds them, the readers hit
my ($runs, $hits, $misses) = split /,/, $node->safe_psql('postgres', $stats);
$node->safe_psql('postgres', q{UPDATE items SET v = v + 1 WHERE tenant_id <= 10});
ok($node->poll_query_until('postgres', qq{SELECT builder_runs = $runs + 10 FROM config_guard.config_stats
                                          WHERE config = 'cfg'}), 'refresh-ahead rebuilds the ten stale documents');
is($node->safe_psql('postgres', q{SELECT count(*) FROM generate_series(1, 10) t
                                   WHERE config_guard.get('cfg', t) = build(t)}), '10', 'fresh');
my (undef, $hits_after, $misses_after) = split /,/, $node->safe_psql('postgres', $stats);
is($misses_after - $misses, 10, 'the misses were the background builds');
is($hits_after - $hits, 10, 'the readers got hits');

# refresh-ahead only for what readers read within the window: a tenant read
# once and then written every second is refreshed while its read is recent,
# then no more (background builds are not reads)
$node->safe_psql('postgres', q{ALTER SYSTEM SET config_guard.refresh_ahead_window = '3s'; SELECT pg_reload_conf()});
sleep 4;  # (every earlier read is out of the window now)
$node->safe_psql('postgres', q{SELECT config_guard.get('cfg', 50)});
($runs) = split /,/, $node->safe_psql('postgres', $stats);
for (1 .. 10) {
  $node->safe_psql('postgres', q{UPDATE items SET v = v + 1 WHERE tenant_id = 50});
  sleep 1;
}
my ($after_writes) = split /,/, $node->safe_psql('postgres', $stats);
cmp_ok($after_writes - $runs, '>=', 1, 'refreshed while its read was recent');
cmp_ok($after_writes - $runs, '<=', 5, 'not once per write for ten seconds: ' . ($after_writes - $runs));
cmp_ok($node->safe_psql('postgres', q{SELECT wasted_refreshes FROM config_guard.config_stats WHERE config = 'cfg'}),
  '>=', 1, 'a refresh replaced before anyone read it counts as wasted');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET config_guard.refresh_ahead_window; SELECT pg_reload_conf()});

# tenants whose key is an image (date, timestamp, enum) are warmed too, and a
# database whose sessions default to REPEATABLE READ still stores
$node->safe_psql('postgres', q{
  CREATE TABLE days (day date NOT NULL, id int NOT NULL, PRIMARY KEY (day, id));
  INSERT INTO days SELECT d::date, 1 FROM generate_series(date '2026-01-01', date '2026-01-05', interval '1 day') d;
  CREATE FUNCTION build_day(day date) RETURNS jsonb LANGUAGE sql STABLE
    AS $$ SELECT jsonb_build_object('n', (SELECT count(*) FROM days d WHERE d.day = build_day.day)) $$;
  SELECT config_guard.define('by_day', 'build_day(date)', ARRAY['days']::regclass[], 'day');
  ALTER DATABASE postgres SET default_transaction_isolation = 'repeatable read';
});
is($node->safe_psql('postgres', q{SELECT config_guard.warm('by_day')}), '5', 'warm() of date tenants');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 5 FROM config_guard.documents d
                                          JOIN config_guard.configs c USING (config_id) WHERE c.name = 'by_day'}),
  'every date tenant built and stored');
$node->safe_psql('postgres', q{ALTER DATABASE postgres RESET default_transaction_isolation});

# a builder that fails with a huge message (as an interruption, which get()
# passes on) is logged and dropped: the worker goes on, nothing crashes
$node->safe_psql('postgres', q{
  CREATE TABLE broken_items (tenant_id int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
  INSERT INTO broken_items SELECT t, 1 FROM generate_series(1, 5) t;
  CREATE FUNCTION build_broken(tenant int) RETURNS jsonb LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION USING ERRCODE = '57014', MESSAGE = repeat('x', 300000); END $$;
  SELECT config_guard.define('broken', 'build_broken(int)', ARRAY['broken_items']::regclass[]);
});
is($node->safe_psql('postgres', q{SELECT config_guard.warm('broken')}), '5', 'a failing config warmed');
ok($node->poll_query_until('postgres', q{SELECT queued = 0 FROM config_guard.warm_progress WHERE config = 'broken'}),
  'its queue is worked off');
is($node->safe_psql('postgres', q{SELECT 1}), '1', 'the server is up');

# refresh-ahead off: a stale document waits for its reader
$node->safe_psql('postgres', q{ALTER SYSTEM SET config_guard.refresh_ahead = off; SELECT pg_reload_conf()});
sleep 1;
($runs) = split /,/, $node->safe_psql('postgres', $stats);
$node->safe_psql('postgres', q{UPDATE items SET v = v + 1 WHERE tenant_id = 1});
sleep 4;
is((split /,/, $node->safe_psql('postgres', $stats))[0], $runs, 'with refresh_ahead off nothing is rebuilt');
is($node->safe_psql('postgres', q{SELECT config_guard.get('cfg', 1) = build(1)}), 't', 'the reader rebuilds it');

# background builds stopped: warm() queues, nothing is built
$node->safe_psql('postgres', q{ALTER SYSTEM SET config_guard.background_build_rate = 0; SELECT pg_reload_conf()});
sleep 1;
$node->safe_psql('postgres', q{UPDATE items SET v = v + 1});
$node->safe_psql('postgres', q{SELECT config_guard.warm('cfg')});
sleep 3;
is($node->safe_psql('postgres', q{SELECT queued FROM config_guard.warm_progress WHERE config = 'cfg'}), '200',
  'with background_build_rate = 0 the queue waits');

# documents nobody reads any more are evicted; those read stay
$node->safe_psql('postgres', q{ALTER SYSTEM SET config_guard.evict_unread_after = '3s'; SELECT pg_reload_conf()});
$node->safe_psql('postgres', q{SELECT config_guard.get('cfg', 70), config_guard.get('cfg', 71)});
for (1 .. 8) {
  $node->safe_psql('postgres', q{SELECT config_guard.get('cfg', 70)});
  sleep 1;
}
is($node->safe_psql('postgres', q{SELECT string_agg(tenant, ',' ORDER BY tenant::int) FROM config_guard.documents
                                   WHERE tenant IN ('70', '71')}), '70', 'the unread document is evicted, the read one stays');
is($node->safe_psql('postgres', q{SELECT config_guard.get('cfg', 71) = build(71)}), 't', 'and is built again when asked');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET config_guard.evict_unread_after; SELECT pg_reload_conf()});

# only the owner warms, and not in a read-only transaction
my ($rc, $out, $err) = $node->psql('postgres', q{SET ROLE stranger; SELECT config_guard.warm('cfg')});
like($err, qr/must be owner of config "cfg"/, 'another role cannot warm the config');
($rc, $out, $err) = $node->psql('postgres', q{BEGIN READ ONLY; SELECT config_guard.warm('cfg')});
like($err, qr/cannot execute config_guard.warm\(\) in a read-only transaction/, 'nor a read-only transaction');
is($node->safe_psql('postgres', q{SELECT has_table_privilege('stranger', 'config_guard.warm_queue', 'SELECT')}), 'f',
  'the queue is not readable by callers');

$node->stop;
unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC|corrupted|refresh-ahead stopped|cleanup of database .* stopped/,
  'no crash or background error in the server log');
done_testing();

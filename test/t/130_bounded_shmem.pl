# Shared memory is fixed-size: more configs than config_guard.max_tracked_configs
# take no memory beyond it, and the configs over the limit keep every
# protection (fresh after writes, builder cap), only their statistics go.
# The slots of configs that are gone are reclaimed: define/undefine cycles
# never exhaust the table, and a config moving from the shared overflow entry
# to a slot of its own is never served stale.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ConfigGuard::Test;

my $node = preloaded_node('bounded', 'config_guard.max_tracked_configs = 10', 'config_guard.max_tracked_tenants = 100');
my $setup = q{
  CREATE EXTENSION config_guard;
  CREATE TABLE items (tenant_id int NOT NULL, id int NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id));
  INSERT INTO items VALUES (1, 1, 'old');
  CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('v', (SELECT string_agg(v, ',') FROM items WHERE tenant_id = tenant)) $$;
};
# four configs of another database take the first four slots
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', $setup . q{
  SELECT config_guard.define('o' || g, 'build(int)', ARRAY['items']::regclass[]) FROM generate_series(1, 4) g;
  SELECT config_guard.get('o' || g, 1) FROM generate_series(1, 4) g;
});
$node->safe_psql('postgres', $setup . q{
  SELECT config_guard.define('c' || g, 'build(int)', ARRAY['items']::regclass[]) FROM generate_series(1, 14) g;
});
my $size = q{SELECT sum(size) FROM pg_shmem_allocations WHERE name LIKE 'config_guard%'};
my $before = $node->safe_psql('postgres', $size);
my $all = q{SELECT string_agg(config_guard.get('c' || g, 1) ->> 'v', ',' ORDER BY g) FROM generate_series(1, 14) g};
my $reader = $node->background_psql('postgres');
$reader->query_safe('SET client_min_messages = error');  # the WARNING goes to the log
is($reader->query_safe($all), join(',', ('old') x 14), 'all fourteen configs serve their documents');
is($reader->query_safe($all), join(',', ('old') x 14), 'and again, from the hit path');
$node->safe_psql('postgres', q{UPDATE items SET v = 'new'});
is($reader->query_safe($all), join(',', ('new') x 14), 'a write invalidates every one of them, the ones over the limit too');
$reader->quit;
is($node->safe_psql('postgres', q{SELECT count(*) <= 10 FROM config_guard.config_counters()}), 't',
  'statistics are kept for at most max_tracked_configs configs');
is($node->safe_psql('postgres', $size), $before, 'the counters table did not grow');
like(slurp_file($node->logfile), qr/config_guard.max_tracked_configs \(10\) is reached/, 'the limit is reported');

# Configs that are gone give their slots to the ones over the limit. Here
# c1..c6 have slots, c7..c14 share the overflow entry. The writer's
# transaction is counted on the overflow entry; the other database is dropped
# while it is open, and the reader moves c7..c10 to its four slots and
# verifies their documents there before the writer commits: the reader must
# still see the commit.
my $writer = $node->background_psql('postgres');
$writer->query_safe('SET client_min_messages = error');
$writer->query_safe(q{BEGIN; UPDATE items SET v = 'newer'});
$node->safe_psql('postgres', 'DROP DATABASE other');
$reader = $node->background_psql('postgres');
$reader->query_safe('SET client_min_messages = error');
my $moved = q{SELECT string_agg(config_guard.get('c' || g, 1) ->> 'v', ',' ORDER BY g) FROM generate_series(7, 10) g};
is($reader->query_safe($moved), join(',', ('new') x 4), 'the reader verified four configs on slots of their own');
is($reader->query_safe($moved), join(',', ('new') x 4), 'and serves them from its fast path');
is($node->safe_psql('postgres', q{SELECT count(*) FROM config_guard.config_counters()}), '10',
  'the slots of the dropped database were reclaimed');
$writer->query_safe('COMMIT');
$writer->quit;
is($reader->query_safe($moved), join(',', ('newer') x 4), 'a writer counted on the overflow entry is seen');
$node->safe_psql('postgres', q{UPDATE items SET v = 'newest'});
is($reader->query_safe($moved), join(',', ('newest') x 4), 'and the next write is seen too');
$reader->quit;

# undefined configs give theirs: c11..c14 take the slots of c1..c4
$node->safe_psql('postgres', q{SELECT config_guard.undefine('c' || g) FROM generate_series(1, 4) g});
sleep 1.2;  # the look-up of which configs are gone runs at most once a second per backend
my $rest = q{SELECT string_agg(config_guard.get('c' || g, 1) ->> 'v', ',' ORDER BY g) FROM generate_series(5, 14) g};
is($node->safe_psql('postgres', "SET client_min_messages = error; $rest"), join(',', ('newest') x 10),
  'the ten live configs are fresh');
is($node->safe_psql('postgres', q{
  SELECT string_agg(c.name, ',' ORDER BY c.config_id) FROM config_guard.config_counters() s
    JOIN config_guard.configs c USING (config_id) WHERE s.misses > 0}),
  join(',', map { "c$_" } 5 .. 14), 'the ten live configs have a slot and statistics of their own');

# define/undefine cycles reuse slots: the last config of 30 cycles still gets
# statistics of its own, and memory does not move
$node->safe_psql('postgres', q{SELECT config_guard.undefine('c14')});
for my $i (1 .. 30) {
  $node->safe_psql('postgres', qq{
    SELECT config_guard.define('d$i', 'build(int)', ARRAY['items']::regclass[]);
    SELECT config_guard.get('d$i', 1);
    SELECT config_guard.undefine('d$i');
  });
  sleep 1.05 if $i % 10 == 0;  # let the next backend's look-up of the gone configs run
}
$node->safe_psql('postgres', q{
  SELECT config_guard.define('last', 'build(int)', ARRAY['items']::regclass[]);
  SELECT config_guard.get('last', 1);
});
is($node->safe_psql('postgres', q{
  SELECT s.misses FROM config_guard.config_counters() s JOIN config_guard.configs c USING (config_id)
   WHERE c.name = 'last'}), '1', 'after 30 define/undefine cycles a new config has its own statistics');
is($node->safe_psql('postgres', q{SELECT count(*) FROM config_guard.config_counters()}), '10',
  'the table holds at most max_tracked_configs slots');
is($node->safe_psql('postgres', $size), $before, 'shared memory did not grow over the cycles');

# more failing tenants than the backoff table holds: entries are evicted (a
# bounded scan under the lock), never an error of shared memory
$node->safe_psql('postgres', q{
  CREATE FUNCTION failing(tenant int) RETURNS jsonb LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no'; END $$;
  SELECT config_guard.define('failing', 'failing(int)', ARRAY['items']::regclass[]);
});
my ($rc, $out, $err) = $node->psql('postgres', q{
  DO $$
  DECLARE failures int := 0;
  BEGIN
    FOR t IN 1..250 LOOP
      BEGIN PERFORM config_guard.get('failing', t); EXCEPTION WHEN object_not_in_prerequisite_state THEN failures := failures + 1; END;
    END LOOP;
    RAISE NOTICE 'failures: %', failures;
  END $$;
});
like($err, qr/failures: 250/, 'every one of 250 failing tenants got its clear error');
unlike($err, qr/out of shared memory/, 'and the backoff table never ran out');
$node->safe_psql('postgres', q{SELECT config_guard.undefine('failing')});

# A config whose builder runs on the overflow entry while a slot frees up:
# its next builder must still wait (max_rebuilds_per_config = 1), not start on
# the fresh slot beside the first.
my $cap = preloaded_node('bounded_cap', 'config_guard.max_tracked_configs = 10',
  'config_guard.max_rebuilds_per_config = 1', 'config_guard.rebuild_wait_timeout = 60s');
$cap->safe_psql('postgres', $setup . q{
  CREATE FUNCTION gated(tenant int) RETURNS jsonb LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_advisory_xact_lock_shared(77); RETURN jsonb_build_object('t', tenant); END $$;
  SELECT config_guard.define('c' || g, 'build(int)', ARRAY['items']::regclass[]) FROM generate_series(1, 10) g;
  SELECT config_guard.get('c' || g, 1) FROM generate_series(1, 10) g;
  SELECT config_guard.define('big', 'gated(int)', ARRAY['items']::regclass[]);
});
my $gate = $cap->background_psql('postgres');
$gate->query_safe('SELECT pg_advisory_lock(77)');
my $first = $cap->background_psql('postgres', on_error_stop => 0);
$first->query_until(qr/sent/, "\\echo sent\nSET client_min_messages = error; SELECT config_guard.get('big', 1);\n");
$cap->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'advisory'})
  or die 'the first builder did not start';
$cap->safe_psql('postgres', q{SELECT config_guard.undefine('c1')});
sleep 1.2;  # the look-up of which configs are gone runs at most once a second per backend
my $second = $cap->background_psql('postgres', on_error_stop => 0);
$second->query_until(qr/sent/, "\\echo sent\nSET client_min_messages = error; SELECT config_guard.get('big', 2);\n");
$cap->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity
                                      WHERE query LIKE '%get(''big'', 2)%' AND wait_event IS NOT NULL})
  or die 'the second call did not start waiting';
sleep 0.5;
is($cap->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'}), '1',
  'one builder of the config runs, the second caller waits for the cap');
# meanwhile a config that never was on the overflow entry takes a free slot
$cap->safe_psql('postgres', q{
  SELECT config_guard.define('fresh', 'build(int)', ARRAY['items']::regclass[]);
  SELECT config_guard.get('fresh', 1);
});
is($cap->safe_psql('postgres', q{SELECT s.misses FROM config_guard.config_counters() s
                                   JOIN config_guard.configs c USING (config_id) WHERE c.name = 'fresh'}), '1',
  'a new config gets a slot of its own while another config builds on the overflow entry');
$gate->query_safe('SELECT pg_advisory_unlock(77)');
$first->quit;
$second->quit;
$gate->quit;
# two configs sharing the overflow entry, one's builder calling get() of the
# other: the nested build does not wait for the slot its own caller holds
$cap->safe_psql('postgres', q{
  SELECT config_guard.define('inner', 'build(int)', ARRAY['items']::regclass[]);
  CREATE FUNCTION outer_build(tenant int) RETURNS jsonb LANGUAGE sql VOLATILE
    AS $$ SELECT jsonb_build_object('inner', config_guard.get('inner', tenant)) $$;
  SELECT config_guard.define('outer', 'outer_build(int)', ARRAY['items']::regclass[]);
});
is($cap->safe_psql('postgres', q{SET client_min_messages = error; SET config_guard.rebuild_wait_timeout = '2s';
                                   SELECT count(*) FROM config_guard.config_counters() s JOIN config_guard.configs c
                                   USING (config_id) WHERE c.name IN ('inner', 'outer');
                                   SELECT config_guard.get('outer', 1) ->> 'inner' IS NOT NULL}), "0\nt",
  'a builder calling get() of another config on the overflow entry, under a cap of one');
$cap->stop;
unlike(slurp_file($cap->logfile), qr/terminated by signal|PANIC/, 'no crash in the server log of the cap test');

$node->stop;
unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC/, 'no crash in the server log');
done_testing();

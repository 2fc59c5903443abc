# Shared memory is fixed-size: more configs than config_guard.max_tracked_configs
# take no memory beyond it, and the configs over the limit keep every
# protection (fresh after writes, builder cap), only their statistics go.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ConfigGuard::Test;

my $node = preloaded_node('bounded', 'config_guard.max_tracked_configs = 10', 'config_guard.max_tracked_tenants = 100');
$node->safe_psql('postgres', q{
  CREATE EXTENSION config_guard;
  CREATE TABLE items (tenant_id int NOT NULL, id int NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id));
  INSERT INTO items VALUES (1, 1, 'old');
  CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('v', (SELECT string_agg(v, ',') FROM items WHERE tenant_id = tenant)) $$;
  SELECT config_guard.define('c' || g, 'build(int)', ARRAY['items']::regclass[]) FROM generate_series(1, 14) g;
});
my $size = q{SELECT size FROM pg_shmem_allocations WHERE name = 'config_guard counters'};
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

$node->stop;
unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC/, 'no crash in the server log');
done_testing();

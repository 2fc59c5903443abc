# Statistics survive a clean restart (written at shutdown, read back at
# start, as pg_stat_statements does), with their stats_reset; after a crash
# they start from zero rather than from an older copy.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ConfigGuard::Test;

my $node = preloaded_node('stats', 'restart_after_crash = on');
$node->safe_psql('postgres', q{
  CREATE EXTENSION config_guard;
  CREATE TABLE items (tenant_id int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
  CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE sql STABLE AS $$ SELECT jsonb_build_object('t', tenant) $$;
  SELECT config_guard.define('cfg', 'build(int)', ARRAY['items']::regclass[]);
  SELECT config_guard.get('cfg', t) FROM generate_series(1, 3) t;
  SELECT config_guard.get('cfg', 1) FROM generate_series(1, 4);
});
my $stats = q{SELECT misses || '/' || hits || '/' || builder_runs || '/' || stats_reset FROM config_guard.config_stats
               WHERE config = 'cfg'};
my $before = $node->safe_psql('postgres', $stats);
like($before, qr{^3/4/3/}, 'three misses, four hits, three builds');
$node->restart;
is($node->safe_psql('postgres', $stats), $before, 'the same after a clean restart, stats_reset included');
ok(!-e $node->data_dir . '/config_guard_stats', 'the file is removed once read');

# a crash: kill -9 of a backend resets shared memory; nothing older comes back
$node->safe_psql('postgres', q{SELECT config_guard.get('cfg', 1)});
my $victim = $node->background_psql('postgres');
my $pid = $victim->query_safe('SELECT pg_backend_pid()');
kill 'KILL', $pid;
eval { $victim->quit };
$node->poll_query_until('postgres', 'SELECT 1', '1') or die 'no recovery';
is($node->safe_psql('postgres', q{SELECT count(*) FROM config_guard.config_counters()}), '0',
  'after a crash the statistics start from zero');

$node->stop;
unlike(slurp_file($node->logfile), qr/terminated by signal 11|PANIC|is damaged/, 'no crash or damaged file in the log');
done_testing();

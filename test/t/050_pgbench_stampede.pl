# 32 pgbench clients ask for the same tenant right after each invalidation:
# exactly one builder run per invalidation.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ConfigGuard::Test;

my $node = preloaded_node('stampede', "max_connections = 100");
$node->safe_psql('postgres', q{
  CREATE EXTENSION config_guard;
  CREATE TABLE items (tenant_id int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
  INSERT INTO items SELECT 1, g FROM generate_series(1, 1000) g;
  CREATE SEQUENCE runs;
  -- a slow builder, so that the clients pile up behind the rebuild
  CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('run', nextval('runs'), 'n', (SELECT count(*) FROM items WHERE tenant_id = tenant),
                              'slept', pg_sleep(0.3) IS NULL) $$;
  SELECT config_guard.define('items', 'build(int)', ARRAY['items']::regclass[]);
  SELECT config_guard.get('items', 1);
});

for my $round (1 .. 3) {
  my $before = $node->safe_psql('postgres', 'SELECT last_value FROM runs');
  $node->safe_psql('postgres', "INSERT INTO items VALUES (1, 1000 + $round)");
  $node->pgbench('--no-vacuum --client=32 --jobs=8 --transactions=10', 0,
    [qr{processed: 320/320}], [qr{^$}], "round $round: 32 clients, no errors",
    { "get_$round" => q{SELECT config_guard.get('items', 1);} });
  my $after = $node->safe_psql('postgres', 'SELECT last_value FROM runs');
  is($after - $before, 1, "round $round: one builder run for one invalidation and 320 calls");
  is($node->safe_psql('postgres', q{SELECT config_guard.get('items', 1) ->> 'n'}), 1000 + $round,
    "round $round: the document has the new row");
}
# as drivers call it: the tenant an untyped parameter of a prepared statement
$node->pgbench('--no-vacuum --client=4 --jobs=2 --transactions=10 -M prepared', 0,
  [qr{processed: 40/40}], [qr{^$}], 'pgbench -M prepared with the tenant as an untyped parameter',
  { 'get_prepared' => qq{\\set tenant 1\nSELECT config_guard.get('items', :tenant);\n} });
my ($waits) = $node->safe_psql('postgres', q{SELECT coalesced_waits FROM config_guard.config_stats});
cmp_ok($waits, '>', 0, 'clients waited for the leader instead of rebuilding');
is($node->safe_psql('postgres', q{SELECT builder_runs FROM config_guard.config_stats}), '4', 'stats count the runs');

$node->stop;
unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC/, 'no crash in the server log');
done_testing();

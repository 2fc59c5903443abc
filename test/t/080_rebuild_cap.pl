# config_guard.max_rebuilds_per_config caps the builder runs of one config in
# progress at once, whatever the number of stale tenants and callers; the
# others wait (Extension wait event), bounded by rebuild_wait_timeout.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ConfigGuard::Test;

my $node = preloaded_node('cap', "config_guard.max_rebuilds_per_config = 2", "max_connections = 40");
$node->safe_psql('postgres', q{
  CREATE EXTENSION config_guard;
  CREATE TABLE items (tenant_id int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
  INSERT INTO items SELECT t, 1 FROM generate_series(1, 6) t;
  CREATE SEQUENCE runs;
  CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM nextval('runs');
    PERFORM pg_advisory_xact_lock_shared(7);
    RETURN jsonb_build_object('tenant', tenant);
  END $$;
  SELECT config_guard.define('items', 'build(int)', ARRAY['items']::regclass[]);
});

my $gate = $node->background_psql('postgres');
$gate->query_safe('SELECT pg_advisory_lock(7)');
my @callers;
for my $t (1 .. 6) {
  my $s = $node->background_psql('postgres');
  $s->query_until(qr/sent/, "\\echo sent\nSELECT 'tenant $t: ' || (config_guard.get('items', $t) ->> 'tenant');\n");
  push @callers, $s;
}
$node->poll_query_until('postgres', q{SELECT count(*) = 6 FROM pg_stat_activity
                                       WHERE query LIKE '%config_guard.get(%'
                                         AND (wait_event = 'advisory' OR wait_event_type = 'Extension')})
  or die 'callers did not all start';
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%config_guard.get(%' AND wait_event = 'advisory'}),
  '2', 'two builders run (they wait for the gate inside the builder)');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%config_guard.get(%' AND wait_event_type = 'Extension'}),
  '4', 'four leaders wait for a builder slot');
is($node->safe_psql('postgres', 'SELECT last_value FROM runs'), '2', 'only two builder runs started');

$gate->query_safe('SELECT pg_advisory_unlock(7)');
for my $t (1 .. 6) {
  like($callers[$t - 1]->query_safe("SELECT 'done'"), qr/tenant $t: $t/, "tenant $t got its document");
}
is($node->safe_psql('postgres', 'SELECT last_value FROM runs'), '6', 'every tenant built once');

# a leader that cannot get a builder slot in time: 55P03, or the stored
# document for a caller that allows staleness
$node->safe_psql('postgres', 'SELECT config_guard.invalidate_all(\'items\')');
$gate->query_safe('SELECT pg_advisory_lock(7)');
my @busy;
for my $t (1 .. 2) {
  my $s = $node->background_psql('postgres');
  $s->query_until(qr/sent/, "\\echo sent\nSELECT config_guard.get('items', $t);\n");
  push @busy, $s;
}
$node->poll_query_until('postgres', q{SELECT count(*) = 2 FROM pg_stat_activity WHERE wait_event = 'advisory' AND query LIKE '%config_guard.get(%'})
  or die 'builders did not start';
my ($ret, $out, $err) = $node->psql('postgres', "SET config_guard.rebuild_wait_timeout = '200ms';\nSELECT config_guard.get('items', 3)");
like($err, qr/timed out waiting for a builder slot of config "items" for tenant 3/, 'no builder slot in time: 55P03');
is($node->safe_psql('postgres', "SET config_guard.rebuild_wait_timeout = '200ms';\nSELECT config_guard.get('items', 4, '1 hour')"),
  '{"tenant": 4}', 'a caller that allows staleness gets the stored document');
$gate->query_safe('SELECT pg_advisory_unlock(7)');
$_->query_safe('SELECT 1') for @busy;
$_->quit for @busy, @callers;
$gate->quit;

$node->stop;
done_testing();

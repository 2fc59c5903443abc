# Rebuilds asked of the primary by hot standbys: a primary and two streaming
# standbys; after each invalidation, 32 sessions (16 on each standby) ask for
# the stale tenant at once, and the builder runs once in the whole cluster;
# the document is stored on the primary and every standby reader gets it by
# replication. With the primary gone, a standby still answers (building
# without storing) within rebuild_wait_timeout; promoted, it stores.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);
use IO::Socket::INET;
use IO::Select;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{shared_preload_libraries = 'config_guard'
config_guard.refresh_ahead = off
max_connections = 100});
$primary->start;
$primary->safe_psql('postgres', q{
  CREATE EXTENSION config_guard;
  CREATE TABLE items (tenant_id int NOT NULL, id int NOT NULL, v int NOT NULL, PRIMARY KEY (tenant_id, id));
  INSERT INTO items SELECT t, g, 0 FROM generate_series(1, 2) t, generate_series(1, 10) g;
  -- a builder that takes a while: the 32 readers arrive while it runs
  CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
  BEGIN
    PERFORM pg_sleep(0.3);
    RETURN jsonb_build_object('v', (SELECT sum(v) FROM items WHERE tenant_id = tenant));
  END $$;
  SELECT config_guard.define('items', 'build(int)', ARRAY['items']::regclass[]);
  SELECT config_guard.get('items', 1), config_guard.get('items', 2);
});
$primary->backup('base');
my @standbys;
for my $name ('standby_a', 'standby_b') {
  my $standby = PostgreSQL::Test::Cluster->new($name);
  $standby->init_from_backup($primary, 'base', has_streaming => 1);
  $standby->append_conf('postgresql.conf', 'max_connections = 100');
  $standby->start;
  push @standbys, $standby;
}
$primary->wait_for_catchup($_) for @standbys;

sub builder_runs {
  $primary->safe_psql('postgres', q{SELECT builder_runs FROM config_guard.config_stats WHERE config = 'items'});
}
my $script = $primary->basedir . '/get.sql';
append_to_file($script, "SELECT config_guard.get('items', 1);\n");

for my $round (1 .. 3) {
  $primary->safe_psql('postgres', qq{UPDATE items SET v = $round WHERE tenant_id = 1 AND id = 1});
  $primary->wait_for_catchup($_) for @standbys;
  my $before = builder_runs();
  my @runs;
  for my $standby (@standbys) {
    my ($out, $err) = ('', '');
    push @runs, [ IPC::Run::start(
      [ 'pgbench', '-n', '-c', '16', '-j', '2', '-t', '1', '-f', $script, '-h', $standby->host,
        '-p', $standby->port, 'postgres' ], '>', \$out, '2>', \$err), \$out, \$err ];
  }
  my $failed = 0;
  for my $run (@runs) {
    $run->[0]->finish;
    $failed++ unless ${ $run->[1] } =~ /number of failed transactions: 0/ || ${ $run->[1] } =~ /processed: 16\/16/;
  }
  is($failed, 0, "round $round: 32 standby sessions (16 on each standby) asked for the stale tenant");
  is(builder_runs() - $before, 1, "round $round: the builder ran once in the whole cluster");
  for my $standby (@standbys) {
    is($standby->safe_psql('postgres', q{SELECT config_guard.get('items', 1) ->> 'v'}), $round,
      "round $round: " . $standby->name . ' serves the new document');
  }
}
is($standbys[0]->safe_psql('postgres', q{SELECT count(*) FROM config_guard.invalidations WHERE tenant = '1'}), '0',
  'the document was stored (on the primary) and its marks folded away, as replication shows');
unlike(slurp_file($standbys[0]->logfile), qr/cannot reach the primary|the primary refused/, 'no request failed');

# An ordinary role reads on a standby (it may not see primary_conninfo; the
# request uses it for the role it names).
$primary->safe_psql('postgres', q{CREATE ROLE reader LOGIN; GRANT SELECT ON items TO reader;
                                  SELECT config_guard.grant_read('items', 'reader');
                                  UPDATE items SET v = 100 WHERE tenant_id = 1 AND id = 1});
$primary->wait_for_catchup($_) for @standbys;
my $runs_before = builder_runs();
is($standbys[0]->safe_psql('postgres', q{SELECT config_guard.get('items', 1) ->> 'v'}, extra_params => [ '-U', 'reader' ]),
  '100', 'an ordinary role on a standby gets the rebuilt document');
is(builder_runs() - $runs_before, 1, 'built on the primary');

# Tenants whose key is an image of their bytes (a date, an enum) reach the
# primary as their text under pinned settings, whatever the caller's.
$primary->safe_psql('postgres', q{
  CREATE TYPE plan AS ENUM ('free', 'pro');
  CREATE TABLE dated (day date NOT NULL, id int NOT NULL, v int NOT NULL, PRIMARY KEY (day, id));
  CREATE TABLE planned (plan plan NOT NULL, id int NOT NULL, v int NOT NULL, PRIMARY KEY (plan, id));
  INSERT INTO dated VALUES ('2026-11-30', 1, 1);
  INSERT INTO planned VALUES ('pro', 1, 1);
  CREATE FUNCTION build_dated(d date) RETURNS jsonb LANGUAGE sql STABLE
    AS $$ SELECT jsonb_build_object('v', (SELECT sum(v) FROM dated WHERE day = d)) $$;
  CREATE FUNCTION build_planned(p plan) RETURNS jsonb LANGUAGE sql STABLE
    AS $$ SELECT jsonb_build_object('v', (SELECT sum(v) FROM planned WHERE plan = p)) $$;
  SELECT config_guard.define('dated', 'build_dated(date)', ARRAY['dated']::regclass[], 'day');
  SELECT config_guard.define('planned', 'build_planned(plan)', ARRAY['planned']::regclass[], 'plan');
  UPDATE dated SET v = 2; UPDATE planned SET v = 2;});
$primary->wait_for_catchup($_) for @standbys;
my $all_runs = q{SELECT COALESCE(sum(builder_runs), 0) FROM config_guard.config_stats WHERE config IN ('dated', 'planned')};
my $primary_before = $primary->safe_psql('postgres', $all_runs);
my $standby_before = $standbys[0]->safe_psql('postgres', $all_runs);
is($standbys[0]->safe_psql('postgres', q{SET DateStyle = 'SQL, DMY'; SET TimeZone = 'Pacific/Kiritimati';
                                          SELECT (config_guard.get('dated', '2026-11-30'::date) ->> 'v')
                                                 || ',' || (config_guard.get('planned', 'pro'::plan) ->> 'v')}),
  '2,2', 'a date and an enum tenant are asked of the primary');
is($primary->safe_psql('postgres', $all_runs) - $primary_before, 2, 'which built them');
is($standbys[0]->safe_psql('postgres', $all_runs), $standby_before, 'and the standby did not');

# A builder slower than rebuild_wait_timeout: the standby's callers time out
# (55P03) as on a primary; none builds on the standby.
$primary->safe_psql('postgres', q{
  INSERT INTO items VALUES (9, 1, 0);
  CREATE OR REPLACE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
  BEGIN
    PERFORM pg_sleep(CASE WHEN tenant = 9 THEN 3 ELSE 0.3 END);
    RETURN jsonb_build_object('v', (SELECT sum(v) FROM items WHERE tenant_id = tenant));
  END $$;});
$primary->wait_for_catchup($_) for @standbys;
my $slow = $primary->basedir . '/slow.sql';
append_to_file($slow, "SET config_guard.rebuild_wait_timeout = '1s';
SELECT config_guard.get('items', 9);
");
my $local_runs = q{SELECT builder_runs FROM config_guard.config_stats WHERE config = 'items'};
my $standby_runs_before = $standbys[0]->safe_psql('postgres', $local_runs);
my ($pb_out, $pb_err) = ('', '');
IPC::Run::run([ 'pgbench', '-n', '-c', '8', '-j', '2', '-t', '1', '-f', $slow, '-h', $standbys[0]->host,
  '-p', $standbys[0]->port, 'postgres' ], '>', \$pb_out, '2>', \$pb_err);
like($pb_err, qr/timed out waiting for the primary's rebuild/, 'callers time out while the primary builds');
is($standbys[0]->safe_psql('postgres', $local_runs), $standby_runs_before, 'and nobody builds on the standby');
$primary->poll_query_until('postgres', q{SELECT count(*) = 1 FROM config_guard.documents WHERE tenant = '9'})
  or die 'the primary did not store tenant 9';
$primary->wait_for_catchup($_) for @standbys;
is($standbys[0]->safe_psql('postgres', q{SELECT config_guard.get('items', 9) ->> 'v'}), '0',
  'the primary finished the build: the next read is a hit');

# A primary that never answers the connection: the caller is cancelled while
# connecting, and the connection is closed (a listener sees its end).
my $listener = IO::Socket::INET->new(Listen => 5, LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp')
  or die "no listener: $!";
$standbys[0]->append_conf('postgresql.conf',
  "config_guard.primary_conninfo = 'host=127.0.0.1 port=" . $listener->sockport . " sslmode=disable connect_timeout=30'");
$standbys[0]->reload;
$primary->safe_psql('postgres', q{UPDATE items SET v = v + 1 WHERE tenant_id = 2 AND id = 1});
$primary->wait_for_catchup($standbys[0]);
my ($rc, $out, $err) = $standbys[0]->psql('postgres',
  q{SET statement_timeout = '500ms'; SET config_guard.rebuild_wait_timeout = '20s'; SELECT config_guard.get('items', 2)});
like($err, qr/canceling statement due to statement timeout/, 'the caller is cancelled while connecting');
my $peer = $listener->accept;
my $sel = IO::Select->new($peer);
my ($buf, $closed) = ('', 0);
my $until = time + 5;
while (time < $until && $sel->can_read(1)) {
  my $n = sysread($peer, $buf, 8192);
  if (!$n) { $closed = 1; last; }
}
ok($closed, 'the standby closed its connection to the unanswering primary');
close $peer;
$standbys[0]->append_conf('postgresql.conf', "config_guard.primary_conninfo = ''");
$standbys[0]->reload;

# Export walks on a standby read the versions the primary made.
is($primary->safe_psql('postgres', q{SELECT count(*) FROM config_guard.export_page('items', 2, NULL, 100)}), '10',
  'a walk on the primary makes the export version');
$primary->wait_for_catchup($_) for @standbys;
# (a cursor of an export version names no source: its source field is all ones)
is($standbys[1]->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE position('__8B' IN cursor) > 0)
                                          FROM config_guard.export_page('items', 2, NULL, 100)}), '10',
  'a walk on a standby is served from it');

# The primary gone: a standby answers, building without storing.
$primary->safe_psql('postgres', q{UPDATE items SET v = 10 WHERE tenant_id = 2 AND id = 1});
$primary->wait_for_catchup($_) for @standbys;
$primary->stop('immediate');
my $t0 = time;
is($standbys[0]->safe_psql('postgres', q{SET config_guard.rebuild_wait_timeout = '1s';
                                          SELECT config_guard.get('items', 2) ->> 'v'}), '10',
  'without a primary, the standby builds the stale tenant itself');
cmp_ok(time - $t0, '<', 10, sprintf('within the wait (%.1f s)', time - $t0));
like(slurp_file($standbys[0]->logfile), qr/cannot reach the primary to ask for a rebuild/, 'and logs why');

# Promotion: standby_b becomes the primary and stores its own rebuilds.
$standbys[1]->promote;
$standbys[1]->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'promotion failed';
$standbys[1]->safe_psql('postgres', q{UPDATE items SET v = 42 WHERE tenant_id = 2 AND id = 1});
is($standbys[1]->safe_psql('postgres', q{SELECT config_guard.get('items', 2) ->> 'v'}), '42',
  'the promoted standby rebuilds as a primary');
is($standbys[1]->safe_psql('postgres', q{SELECT count(*) FROM config_guard.invalidations WHERE tenant = '2'}), '0',
  'and stores the document');

$_->stop for @standbys;
done_testing();

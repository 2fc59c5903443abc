# Builder runs per invalidation with readers on hot standbys (run by
# standby_bench.sh): a primary and two streaming standbys; ROUNDS times, a
# write invalidates one tenant and READERS sessions on each standby ask for it
# at once. With config_guard.standby_rebuild on, the standbys ask the primary;
# off, each standby builds for each caller without storing (as before 0.6).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Time::HiRes qw(time);

my ($rounds, $readers, $report) = @ARGV;
$rounds ||= 5;
$readers ||= 16;

my $primary = PostgreSQL::Test::Cluster->new('bench_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'config_guard'\nmax_connections = 100\n");
$primary->start;
$primary->safe_psql('postgres', q{
  CREATE EXTENSION config_guard;
  CREATE TABLE items (tenant_id int NOT NULL, id int NOT NULL, v int NOT NULL, PRIMARY KEY (tenant_id, id));
  INSERT INTO items SELECT 1, g, 0 FROM generate_series(1, 1000) g;
  -- a 200 ms builder
  CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
  BEGIN
    PERFORM pg_sleep(0.2);
    RETURN jsonb_build_object('v', (SELECT sum(v) FROM items WHERE tenant_id = tenant));
  END $$;
  SELECT config_guard.define('items', 'build(int)', ARRAY['items']::regclass[]);
  SELECT config_guard.get('items', 1);
});
$primary->backup('base');
my @standbys;
for my $name ('bench_standby_a', 'bench_standby_b') {
  my $s = PostgreSQL::Test::Cluster->new($name);
  $s->init_from_backup($primary, 'base', has_streaming => 1);
  $s->append_conf('postgresql.conf', "max_connections = 100\n");
  $s->start;
  push @standbys, $s;
}
my $script = $primary->basedir . '/get.sql';
PostgreSQL::Test::Utils::append_to_file($script, "SELECT config_guard.get('items', 1);\n");
my $runs_sql = q{SELECT COALESCE(sum(builder_runs), 0) FROM config_guard.config_stats WHERE config = 'items'};

my %result;
for my $mode ('on', 'off') {
  for my $s (@standbys) {
    $s->append_conf('postgresql.conf', "config_guard.standby_rebuild = $mode\n");
    $s->reload;
  }
  my ($runs, $seconds, $v) = (0, 0, 0);
  for my $round (1 .. $rounds) {
    $v++;
    $primary->safe_psql('postgres', "UPDATE items SET v = v + 1 WHERE tenant_id = 1 AND id = 1");
    $primary->wait_for_catchup($_) for @standbys;
    my $before = $primary->safe_psql('postgres', $runs_sql);
    $before += $_->safe_psql('postgres', $runs_sql) for @standbys;
    my $t0 = time;
    my @h = map {
      IPC::Run::start([ 'pgbench', '-n', '-c', $readers, '-j', '2', '-t', '1', '-f', $script, '-h', $_->host,
        '-p', $_->port, 'postgres' ], '>', \my $out, '2>', \my $err)
    } @standbys;
    $_->finish for @h;
    $seconds += time - $t0;
    my $after = $primary->safe_psql('postgres', $runs_sql);
    $after += $_->safe_psql('postgres', $runs_sql) for @standbys;
    $runs += $after - $before;
  }
  $result{$mode} = [ $runs / $rounds, $seconds / $rounds ];
}
# (PostgreSQL::Test::Utils sends stdout to its log: the table goes to $report)
open(my $fh, '>', $report) or die "cannot write $report: $!";
printf $fh "\nBuilder runs per invalidation, %d readers on each of 2 standbys at once (%d rounds, 200 ms builder):\n",
  $readers, $rounds;
printf $fh "%-22s %28s %22s\n", 'standby_rebuild', 'builder runs per invalidation', 'seconds per round';
printf $fh "%-22s %28.1f %22.2f\n", $_, @{ $result{$_} } for ('on', 'off');
printf $fh "%-22s %28.1f\n", 'off / on', $result{off}[0] / ($result{on}[0] || 1);
close $fh;
$_->stop for @standbys;
$primary->stop;

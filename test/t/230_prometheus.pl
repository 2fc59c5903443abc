# The Prometheus collector (monitoring/config_guard.yml) with the real
# prometheus-sql-exporter: the metric names, labels and a value that moves,
# per-config figures per database, and the cluster-wide role figures exported
# once, not once per database.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use IPC::Run;
use FindBin;
use ConfigGuard::Test;

my $exporter = '/usr/bin/prometheus-sql-exporter';
plan skip_all => "$exporter is not installed" unless -x $exporter;

my $node = preloaded_node('prometheus');
$node->safe_psql('postgres', q{
  CREATE EXTENSION config_guard;
  CREATE ROLE config_guard_monitor LOGIN;
  CREATE ROLE config_svc LOGIN;
  SELECT config_guard.set_role_limit('config_svc', 4, max_queued => 16, queue_timeout => '2.5s');
  CREATE DATABASE app;
});
$node->safe_psql('app', q{
  CREATE EXTENSION config_guard;
  CREATE TABLE items (tenant_id int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
  INSERT INTO items VALUES (1, 1), (2, 1);
  CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE sql STABLE
    AS $$ SELECT jsonb_build_object('n', (SELECT count(*) FROM items WHERE tenant_id = tenant)) $$;
  SELECT config_guard.define('cfg', 'build(int)', ARRAY['items']::regclass[]);
  SELECT config_guard.get('cfg', 1);
});

# The shipped collector, pointed at this node, scraping every second.
my $collector = slurp_file("$FindBin::Bin/../../monitoring/config_guard.yml");
my ($host, $port) = ($node->host, $node->port);
$collector =~ s{host=/var/run/postgresql}{host=$host&port=$port}g;
$collector =~ s{interval: '15s'}{interval: '1s'}g;
# (both databases in the per-database job: the role figures must still come once)
$collector =~ s{(  - 'postgres://config_guard_monitor\@/app\?[^']*')}{$1\n  - 'postgres://config_guard_monitor\@/postgres?host=$host&port=$port&sslmode=disable'};
my $config = $node->basedir . '/exporter.yml';
append_to_file($config, $collector);
my $listen = '127.0.0.1:' . PostgreSQL::Test::Cluster::get_free_port();
my ($out, $err) = ('', '');
my $run = IPC::Run::start([ $exporter, '-config.file', $config, '-web.listen-address', $listen ], '>', \$out, '2>',
  \$err);

my $http = HTTP::Tiny->new(timeout => 5);
sub scrape { my $r = $http->get("http://$listen/metrics"); return $r->{success} ? $r->{content} : ''; }
sub value {  # value(metrics, name, labels...) -> the sample's value, or undef
  my ($metrics, $name, %labels) = @_;
  for my $line (split /\n/, $metrics) {
    next unless $line =~ /^\Q$name\E\{([^}]*)\} (\S+)$/;
    my ($labels, $v) = ($1, $2);
    next if grep { $labels !~ /(^|,)\Q$_\E="\Q$labels{$_}\E"/ } keys %labels;
    return $v;
  }
  return undef;
}
my $metrics = '';
for (1 .. 60) {
  $metrics = scrape();
  last if defined value($metrics, 'sql_config_guard_config', col => 'hits', config => 'cfg')
    && defined value($metrics, 'sql_config_guard_role', col => 'max_active');
  sleep 1;
}
ok(defined value($metrics, 'sql_config_guard_config', col => 'misses', config => 'cfg', database => 'app'),
  'per-config figures, labelled by config and database') or diag($metrics . $err);
is(value($metrics, 'sql_config_guard_config', col => 'builder_runs', config => 'cfg'), '1', 'builder runs');
ok(defined value($metrics, 'sql_config_guard_config', col => 'avg_build_seconds', config => 'cfg'),
  'build times in seconds');
is(value($metrics, 'sql_config_guard_config', col => 'stale_hits', config => 'cfg'), '0', 'zeros, not NULLs');
is(value($metrics, 'sql_config_guard_role', col => 'queue_timeout_seconds', role => 'config_svc'), '2.5',
  'the queue timeout in seconds');
is(value($metrics, 'sql_config_guard_role', col => 'max_active', role => 'config_svc'), '4', 'the role limit');
my $role_samples = () = $metrics =~ /^sql_config_guard_role\{[^}]*col="max_active"[^}]*role="config_svc"[^}]*\}/mg;
is($role_samples, 1, 'cluster-wide figures exported once, not once per database');
ok(defined value($metrics, 'sql_config_guard_table_bytes', table => 'invalidations', database => 'app'),
  'the extension tables\' sizes');

# a value that moves: three hits
my $hits = value($metrics, 'sql_config_guard_config', col => 'hits', config => 'cfg', database => 'app');
$node->safe_psql('app', q{SELECT config_guard.get('cfg', 1) FROM generate_series(1, 3)});
my $moved;
for (1 .. 30) {
  $moved = value(scrape(), 'sql_config_guard_config', col => 'hits', config => 'cfg', database => 'app');
  last if defined $moved && $moved == $hits + 3;
  sleep 1;
}
is($moved, $hits + 3, "hits went from $hits to " . ($moved // 'nothing'));

$run->kill_kill;
$node->stop;
done_testing();

# Behind a real PgBouncer in transaction pooling mode: 32 clients through a
# pool of 16 server connections against a limit of 4 never have more than 4
# statements running, and see no errors.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ConfigGuard::Test;
use IPC::Run;
use Time::HiRes qw(time usleep);

my $pgbouncer = '/usr/sbin/pgbouncer';
plan skip_all => 'pgbouncer is not installed' unless -x $pgbouncer;

my $node = preloaded_node('pooled', "max_connections = 60");
$node->safe_psql('postgres', q{
  CREATE EXTENSION config_guard;
  CREATE ROLE svc LOGIN;
  SELECT config_guard.set_role_limit('svc', 4, 64, '30s');
});

my ($bouncer, $port) = start_pgbouncer($node, 'svc', 16);
END { $bouncer->kill_kill if $bouncer }
my $dir = PostgreSQL::Test::Utils::tempdir;
ok($bouncer, 'pgbouncer started');

PostgreSQL::Test::Utils::append_to_file("$dir/work.sql", "SELECT pg_sleep(0.02);\n");
my ($out, $err) = ('', '');
my $bench = IPC::Run::start(
  [ 'pgbench', '-n', '-h', '127.0.0.1', '-p', $port, '-U', 'svc', '-c', '32', '-j', '4', '-T', '8',
    '-f', "$dir/work.sql", 'postgres' ],
  '>', \$out, '2>', \$err);

# Sample what runs while pgbench goes on. A statement is running when it is
# inside pg_sleep (wait event PgSleep): that is inside the executor, past
# admission. ("active" alone also counts parsing, planning and waiting.)
# pg_stat_activity is read backend by backend, not at one instant: a statement
# that has just ended may still show PgSleep while the next one has started.
# So a sample of 5 now and then is the reading, not the limit; a limit not
# kept would show 32 clients' worth, sample after sample.
my ($samples, $max_running, $max_active, $max_backends, $over) = (0, 0, 0, 0, 0);
my $deadline = time + 7;
while (time < $deadline) {
  my ($running, $active, $backends) = split /\|/, $node->safe_psql('postgres', q{
    SELECT count(*) FILTER (WHERE wait_event = 'PgSleep'),
           (SELECT active FROM config_guard.role_stats WHERE role = 'svc'::regrole),
           count(*)
      FROM pg_stat_activity WHERE usename = 'svc'});
  $samples++;
  $max_running = $running if $running > $max_running;
  $over++ if $running > 4;
  $max_active = $active if $active > $max_active;
  $max_backends = $backends if $backends > $max_backends;
}
$bench->finish;
my $exit = $? >> 8;

is($exit, 0, 'pgbench through pgbouncer succeeded');
like($out, qr/number of failed transactions: 0 /, 'no failed transactions');
unlike($err, qr/ERROR/, 'no errors reported to the clients');
cmp_ok($samples, '>=', 20, "sampled pg_stat_activity $samples times");
cmp_ok($max_running, '<=', 5, "at most 4 statements ran at once (saw at most $max_running)");
cmp_ok($over, '<=', $samples / 20, "over 4 in $over of $samples samples (reading skew only)");
cmp_ok($max_running, '>=', 3, "the limit was actually reached (saw $max_running)");
cmp_ok($max_active, '<=', 4, "role_stats.active never above 4 (saw $max_active)");
cmp_ok($max_backends, '>', 4, "more server connections than slots were in use (saw $max_backends)");
is($node->safe_psql('postgres', q{SELECT active || '/' || queued FROM config_guard.role_stats}), '0/0',
  'nothing held or queued afterwards');
my ($tps) = $out =~ /tps = ([\d.]+)/;
note("throughput through pgbouncer: $tps tps");

$bouncer->kill_kill;
undef $bouncer;
$node->stop;
done_testing();

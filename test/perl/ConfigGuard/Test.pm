# Helpers shared by config_guard's TAP tests.
package ConfigGuard::Test;

use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Time::HiRes qw(usleep);

our @EXPORT = qw(preloaded_node start_pgbouncer);

# A new, started node with config_guard in shared_preload_libraries and any
# further postgresql.conf lines given. Refresh-ahead is off unless a test
# turns it on: background rebuilds would move the counters the tests assert.
sub preloaded_node {
  my ($name, @conf) = @_;
  my $node = PostgreSQL::Test::Cluster->new($name);
  $node->init;
  $node->append_conf('postgresql.conf',
    join("\n", "shared_preload_libraries = 'config_guard'", 'config_guard.refresh_ahead = off', @conf) . "\n");
  $node->start;
  return $node;
}

# Starts a PgBouncer in transaction pooling mode in front of the node's
# postgres database, with trust authentication for `user`. Returns the
# IPC::Run harness (kill_kill it when done; undef if it did not start) and
# the port it listens on (127.0.0.1).
sub start_pgbouncer {
  my ($node, $user, $pool_size) = @_;
  my $dir = PostgreSQL::Test::Utils::tempdir;
  my $port = PostgreSQL::Test::Cluster::get_free_port();
  my ($host, $node_port) = ($node->host, $node->port);
  PostgreSQL::Test::Utils::append_to_file("$dir/users.txt", qq{"$user" ""\n});
  PostgreSQL::Test::Utils::append_to_file("$dir/pgbouncer.ini", <<"INI");
[databases]
postgres = host=$host port=$node_port dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
pool_mode = transaction
default_pool_size = $pool_size
max_client_conn = 200
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
  my $bouncer = IPC::Run::start([ '/usr/sbin/pgbouncer', "$dir/pgbouncer.ini" ], '>', "$dir/out", '2>', "$dir/err");
  for (1 .. 100) {
    last if -f "$dir/pgbouncer.pid";
    usleep(100_000);
  }
  return (-f "$dir/pgbouncer.pid" ? $bouncer : undef, $port);
}

1;

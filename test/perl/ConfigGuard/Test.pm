# Helpers shared by config_guard's TAP tests.
package ConfigGuard::Test;

use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;

our @EXPORT = qw(preloaded_node);

# A new, started node with config_guard in shared_preload_libraries and any
# further postgresql.conf lines given.
sub preloaded_node {
  my ($name, @conf) = @_;
  my $node = PostgreSQL::Test::Cluster->new($name);
  $node->init;
  $node->append_conf('postgresql.conf', join("\n", "shared_preload_libraries = 'config_guard'", @conf) . "\n");
  $node->start;
  return $node;
}

1;

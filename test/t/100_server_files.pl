# What config_guard reads from the server's own files: the sizes of its shared
# memory from postgresql.conf (kept, not discarded as unknown settings), and
# the cursor key in $PGDATA (created once, private to the server's user, and
# the same across restarts, so a walk continues after one).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ConfigGuard::Test;

my $node = preloaded_node('files', 'config_guard.max_tracked_tenants = 500', 'config_guard.max_tracked_configs = 40');
is($node->safe_psql('postgres', 'SHOW config_guard.max_tracked_tenants'), '500', 'max_tracked_tenants from postgresql.conf');
is($node->safe_psql('postgres', 'SHOW config_guard.max_tracked_configs'), '40', 'max_tracked_configs from postgresql.conf');
unlike(slurp_file($node->logfile), qr/invalid configuration parameter name "config_guard/,
  'no config_guard setting was discarded at start');

my $key = $node->data_dir . '/config_guard_cursor.key';
ok(-f $key, 'the cursor key file exists');
is((stat $key)[2] & 07777, 0600, 'and only the server user can read it');
is(-s $key, 16, 'it holds a 128-bit key');
my $before = slurp_file($key);

$node->safe_psql('postgres', q{
  CREATE EXTENSION config_guard;
  CREATE TABLE items (tenant_id int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
  INSERT INTO items SELECT 1, g FROM generate_series(1, 5) g;
  CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
  SELECT config_guard.define('items', 'build(int)', ARRAY['items']::regclass[]);
});
my $cursor = $node->safe_psql('postgres', q{SELECT cursor FROM config_guard.export_page('items', 1, NULL, 2) OFFSET 1});
$node->restart;
is(slurp_file($key), $before, 'the key is the same after a restart');
is($node->safe_psql('postgres', qq{SELECT count(*) FROM config_guard.export_page('items', 1, '$cursor', 10)}), '3',
  'a walk continues across the restart');

$node->stop;
unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC/, 'no crash in the server log');
done_testing();

# Without shared_preload_libraries, CREATE EXTENSION works but every function
# fails with SQLSTATE 55000 and a HINT naming the setting.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('not_preloaded');
$node->init;
$node->start;

$node->safe_psql('postgres', q{
  CREATE EXTENSION config_guard;
  CREATE TABLE flags (tenant_id bigint NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
  CREATE FUNCTION build(tenant bigint) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
});

my @calls = (
  q{SELECT config_guard.define('c', 'build(bigint)', ARRAY['flags']::regclass[])},
  q{SELECT config_guard.undefine('c')},
  q{SELECT * FROM config_guard.export_page('c', 1)},
  q{SELECT * FROM config_guard.export_sql('c')},
);
for my $sql (@calls) {
  my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql");
  isnt($ret, 0, "fails without preloading: $sql");
  like($err, qr/ERROR:\s+55000: config_guard must be loaded via shared_preload_libraries/, "SQLSTATE 55000: $sql");
  like($err, qr/HINT:\s+Add config_guard to shared_preload_libraries/, "HINT names the setting: $sql");
}

# Once preloaded, the same database works.
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'config_guard'");
$node->restart;
$node->safe_psql('postgres', q{SELECT config_guard.define('c', 'build(bigint)', ARRAY['flags']::regclass[])});
is($node->safe_psql('postgres', q{SELECT count(*) FROM config_guard.export_page('c', 1)}), '0',
  'works after adding config_guard to shared_preload_libraries and restarting');

$node->stop;
done_testing();

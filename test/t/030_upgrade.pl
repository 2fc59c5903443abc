# ALTER EXTENSION config_guard UPDATE from 0.1 through every version: configs
# defined with 0.1 keep working, get their invalidation triggers, and gain the
# cache (0.2), admission control (0.3), the trust model (0.4), shared sources
# (0.5) and export versions (0.6). Until the update, the new library refuses to
# work on objects older than 0.5; at 0.5 it exports page by page.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ConfigGuard::Test;

my $node = preloaded_node('upgrade');

# A config as the 0.1 library wrote it: a counting builder over `table`, a
# registry row and its one source.
sub legacy_config {
  my ($id, $name, $table, $source) = @_;
  return qq{
  CREATE FUNCTION build_$name(tenant bigint) RETURNS jsonb LANGUAGE sql STABLE
    AS \$\$ SELECT jsonb_build_object('n', (SELECT count(*) FROM $table WHERE tenant_id = tenant)) \$\$;
  INSERT INTO config_guard.configs (config_id, name, builder, tenant_column, tenant_type, owner)
    VALUES (pg_catalog.nextval('config_guard.config_id_seq'), '$name', 'build_$name(bigint)', 'tenant_id', 'bigint',
            current_user::regrole);
  INSERT INTO config_guard.config_sources VALUES ($id, 0, '$source');};
}

$node->safe_psql('postgres', q{
  CREATE EXTENSION config_guard VERSION '0.1';
  CREATE TABLE flags (tenant_id bigint NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id));
  INSERT INTO flags SELECT t, g, 'v' FROM generate_series(1, 2) t, generate_series(1, 5) g;
  -- (one over a partition, which define() refuses since 0.4; one over a table
  -- with an unlogged partition, which cannot join since 0.4)
  CREATE TABLE regional (tenant_id bigint NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id)) PARTITION BY LIST (id);
  CREATE TABLE regional_1 PARTITION OF regional FOR VALUES IN (1);
  CREATE TABLE mixed (tenant_id bigint NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id)) PARTITION BY LIST (id);
  CREATE TABLE mixed_1 PARTITION OF mixed FOR VALUES IN (1);
  CREATE UNLOGGED TABLE mixed_2 PARTITION OF mixed FOR VALUES IN (2);
} . legacy_config(1, 'flags', 'flags', 'flags') . legacy_config(2, 'regional', 'regional_1', 'regional_1')
  . legacy_config(3, 'mixed', 'mixed', 'mixed'));
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'config_guard'}), '0.1',
  'installed at 0.1');
my ($rc, $out, $err) = $node->psql('postgres', q{SELECT count(*) FROM config_guard.export_page('flags', 1)});
like($err, qr/extension config_guard in this database is older than its library.*\n.*ALTER EXTENSION config_guard UPDATE/,
  'the new library refuses the 0.1 objects with a hint');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_proc WHERE proname = 'get'
                                   AND pronamespace = 'config_guard'::regnamespace}), '0', 'no get() at 0.1');

($rc, $out, $err) = $node->psql('postgres', q{ALTER EXTENSION config_guard UPDATE TO '0.5'});
is($rc, 0, 'ALTER EXTENSION config_guard UPDATE');
like($err, qr/WARNING:  source regional_1 of config "regional" is a partition or an inheritance child/,
  'a config over a partition is told that writes through its parent do not invalidate');
like($err, qr/WARNING:  table public.mixed_2 cannot be a partition or inheritance child of a config's source/,
  'an unlogged partition of an older config is told, not a reason to fail the update');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_trigger WHERE tgrelid = 'mixed_1'::regclass
                                   AND tgname LIKE 'config_guard_%'}), '5', 'its logged partition has the triggers');
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'config_guard'}), '0.5',
  'updated through 0.2, 0.3 and 0.4 to 0.5');
is($node->safe_psql('postgres', q{SELECT count(*) FROM config_guard.export_page('flags', 1)}), '5',
  'at 0.5 the library exports without export versions');
$node->safe_psql('postgres', 'ALTER EXTENSION config_guard UPDATE');
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'config_guard'}), '0.6',
  'and on to 0.6');
is($node->safe_psql('postgres', q{SELECT count(*) FROM config_guard.configs WHERE definition_id IS NOT NULL}), '3',
  'the configs have a definition identity');
is($node->safe_psql('postgres', q{SELECT has_function_privilege('public', 'config_guard.invalidation_trigger()', 'EXECUTE')}),
  'f', 'only config_guard attaches its trigger function');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_trigger WHERE tgrelid = 'flags'::regclass
                                   AND tgname LIKE 'config_guard_%' AND tgenabled = 'A'}), '4',
  'the update installed the triggers, firing ALWAYS');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_trigger WHERE tgrelid = 'flags'::regclass
                                   AND tgname LIKE 'config_guard_%_replica' AND tgenabled = 'R'}), '1',
  'and the row trigger for the logical replication apply worker');
my $home_before = $node->safe_psql('postgres', q{SELECT builder_home FROM config_guard.configs WHERE name = 'flags'});
is($node->safe_psql('postgres', q{SELECT config_guard.get('flags', 1)}), '{"n": 5}', 'get() works after the update');
$node->safe_psql('postgres', q{SELECT config_guard.define('home_probe', 'build_flags(bigint)', ARRAY['flags']::regclass[])});
is($node->safe_psql('postgres', q{SELECT builder_home FROM config_guard.configs WHERE name = 'home_probe'}), $home_before,
  'the update gives existing configs the home define() gives (their oids are trusted, not adopted again)');
$node->safe_psql('postgres', q{SELECT config_guard.undefine('home_probe')});
$node->safe_psql('postgres', 'INSERT INTO flags VALUES (1, 6, NULL)');
is($node->safe_psql('postgres', q{SELECT config_guard.get('flags', 1)}), '{"n": 6}',
  'a write after the update invalidates');
is($node->safe_psql('postgres', q{SELECT count(*) FROM config_guard.export_page('flags', 1)}), '6', 'export after the update');
is($node->safe_psql('postgres', q{SELECT versions || '/' || rows FROM config_guard.export_version_stats WHERE config = 'flags'}),
  '1/6', 'from an export version');

# The updated extension matches a fresh install object for object.
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION config_guard');
my $objects = q{SELECT pg_describe_object(classid, objid, 0) FROM pg_depend
                 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
                   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'config_guard') ORDER BY 1};
is($node->safe_psql('postgres', $objects), $node->safe_psql('fresh', $objects),
  'the same objects as a fresh install');
is($node->safe_psql('postgres', q{SELECT count(*) FROM config_guard.role_stats}), '0', 'admission control after the update');

$node->stop;
done_testing();

# pg_upgrade of a cluster with configs: the check passes (no table holds a
# regprocedure), the upgraded cluster serves the same documents, its stored
# builder oids (function oids are not kept) are not trusted but resolved by
# signature, the builder stays protected, and the first rename repairs the oid.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Cwd ();
use ConfigGuard::Test;

my $old = preloaded_node('old');
$old->safe_psql('postgres', q{
  CREATE EXTENSION config_guard;
  CREATE ROLE svc;
  CREATE SCHEMA app;
  CREATE TABLE app.items (tenant_id int NOT NULL, id int NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id));
  INSERT INTO app.items SELECT t, i, 'v' || t || '-' || i FROM generate_series(1, 3) t, generate_series(1, 2) i;
  -- functions created before the builder take oids the new cluster gives to others
  CREATE FUNCTION app.filler1() RETURNS int LANGUAGE sql AS 'SELECT 1';
  CREATE FUNCTION app.filler2() RETURNS int LANGUAGE sql AS 'SELECT 2';
  CREATE FUNCTION app.build(t int) RETURNS jsonb LANGUAGE sql STABLE
    AS $$ SELECT jsonb_agg(v ORDER BY id) FROM app.items WHERE tenant_id = t $$;
  SELECT config_guard.define('cfg', 'app.build(int)', ARRAY['app.items']::regclass[]);
  SELECT config_guard.grant_read('cfg', 'svc');
  SELECT config_guard.get('cfg', t) FROM generate_series(1, 3) t;
});
my $before = $old->safe_psql('postgres', q{SELECT string_agg(config_guard.get('cfg', t)::text, ';' ORDER BY t) FROM generate_series(1, 3) t});
my $old_oid = $old->safe_psql('postgres', q{SELECT builder FROM config_guard.configs});
$old->stop;

my $new = PostgreSQL::Test::Cluster->new('new');
$new->init;
$new->append_conf('postgresql.conf', "shared_preload_libraries = 'config_guard'\n");
my $bindir = $new->config_data('--bindir');
my $dir = Cwd::abs_path(PostgreSQL::Test::Utils::tempdir);
# (absolute: pg_upgrade runs in $dir, and 17's data directories are relative)
my @upgrade = ("$bindir/pg_upgrade", '--no-sync', '-b', $bindir, '-B', $bindir, '-d', Cwd::abs_path($old->data_dir),
  '-D', Cwd::abs_path($new->data_dir), '-p', $old->port, '-P', $new->port, '-s', $dir);
my ($out, $err) = ('', '');
my $cwd = Cwd::getcwd();
chdir $dir;
my $ok = IPC::Run::run([@upgrade, '--check'], '>', \$out, '2>', \$err);
ok($ok, 'pg_upgrade --check passes with a config defined') or diag("$out\n$err");
# (17 checks the reg* types with the other data types)
like($out, qr/(?:reg\* data types in user tables|data type usage)\s+ok/, 'no reg* column is reported');
$ok = IPC::Run::run(\@upgrade, '>', \$out, '2>', \$err);
ok($ok, 'pg_upgrade runs') or diag("$out\n$err");
chdir $cwd;
$new->start;

my $home = q{SELECT (SELECT system_identifier FROM pg_control_system())::text || ':' ||
                   (SELECT oid FROM pg_database WHERE datname = current_database())::text || ':' ||
                   'config_guard.configs'::regclass::oid::text};
is($new->safe_psql('postgres', "SELECT builder_home = ($home) FROM config_guard.configs"), 'f',
  'the config comes from another home (pg_upgrade gives the cluster a new system identifier)');

is($new->safe_psql('postgres', q{SELECT count(*) FROM pg_proc WHERE oid = (SELECT builder FROM config_guard.configs)
                                   AND proname = 'build'}), '0',
  'the stored builder oid does not name the builder in the new cluster (the case this handles)')
  or diag("old oid $old_oid");
is($new->safe_psql('postgres', q{SELECT string_agg(config_guard.get('cfg', t)::text, ';' ORDER BY t) FROM generate_series(1, 3) t}),
  $before, 'the upgraded cluster serves the same documents');
is($new->safe_psql('postgres', "SELECT builder_home = ($home), builder = 'app.build(int)'::regprocedure FROM config_guard.configs"),
  't|t', 'its first use adopted the builder its signature names');
$new->safe_psql('postgres', q{UPDATE app.items SET v = 'changed' WHERE tenant_id = 2 AND id = 1});
is($new->safe_psql('postgres', q{SET ROLE svc; SELECT config_guard.get('cfg', 2)::text}), '["changed", "v2-2"]',
  'a write invalidates and the builder, found by its signature, rebuilds (for a granted reader too)');
my ($rc, $stdout, $stderr) = $new->psql('postgres', q{DROP FUNCTION app.build(int)});
like($stderr, qr/config "cfg" depends on it/, 'the builder cannot be dropped');
$new->safe_psql('postgres', q{ALTER FUNCTION app.build(int) RENAME TO build_v2});
is($new->safe_psql('postgres', q{SELECT builder_signature, builder = 'app.build_v2(int)'::regprocedure FROM config_guard.configs}),
  'app.build_v2(integer)|t', 'the first rename repaired the oid and carried the signature');
$new->safe_psql('postgres', q{UPDATE app.items SET v = 'again' WHERE tenant_id = 3 AND id = 1});
is($new->safe_psql('postgres', q{SELECT config_guard.get('cfg', 3)::text}), '["again", "v3-2"]', 'and it keeps building');

$new->stop;
unlike(slurp_file($new->logfile), qr/terminated by signal|PANIC/, 'no crash in the server log');
done_testing();

# Config definitions live in extension tables that pg_dump includes: a dump
# restored into a new database brings the configs back, and they work there.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ConfigGuard::Test;
use IPC::Run;

my $node = preloaded_node('dump');

$node->safe_psql('postgres', 'CREATE DATABASE source_db');
$node->safe_psql('source_db', q{
  CREATE EXTENSION config_guard;
  CREATE SCHEMA app;
  CREATE TABLE app.flags (tenant_id uuid NOT NULL, flag_id int NOT NULL, name text,
                          PRIMARY KEY (tenant_id, flag_id));
  CREATE TABLE app.segments (segment_id bigint PRIMARY KEY, tenant_id uuid NOT NULL);
  CREATE INDEX ON app.segments (tenant_id, segment_id);
  INSERT INTO app.flags SELECT '00000000-0000-0000-0000-000000000001', g, 'f' || g FROM generate_series(1, 25) g;
  INSERT INTO app.segments SELECT g, '00000000-0000-0000-0000-000000000001' FROM generate_series(1, 5) g;
  CREATE FUNCTION app.build(tenant uuid) RETURNS jsonb LANGUAGE sql STABLE
    AS $$ SELECT jsonb_build_object('flags', (SELECT count(*) FROM app.flags WHERE tenant_id = tenant)) $$;
  SELECT config_guard.define('customer', 'app.build(uuid)', ARRAY['app.flags', 'app.segments']::regclass[]);
  SELECT config_guard.define('flags_only', 'app.build(uuid)', ARRAY['app.flags']::regclass[]);
  SELECT config_guard.undefine('flags_only');
  CREATE ROLE dump_reader;
  SELECT config_guard.grant_read('customer', 'dump_reader');
  CREATE ROLE dump_svc LOGIN;
  SELECT config_guard.set_role_limit('dump_svc', 3, 10, '2s');
});

my $registry = q{
  SELECT c.name, c.builder_signature, c.tenant_column, c.tenant_type, string_agg(s.source::text, ',' ORDER BY s.position)
    FROM config_guard.configs c JOIN config_guard.config_sources s USING (config_id)
   GROUP BY 1, 2, 3, 4 ORDER BY 1};
my $tenant = q{'00000000-0000-0000-0000-000000000001'::uuid};
my $walk = qq{
  SELECT count(*) FROM config_guard.export_page('customer', $tenant,
    (SELECT cursor FROM config_guard.export_page('customer', $tenant, NULL, 10) OFFSET 9), 100)};

my $before = $node->safe_psql('source_db', $registry);
is($node->safe_psql('source_db', $walk), '20', 'rows after the first page of ten, before the dump');

my $dump = $node->basedir . '/source_db.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, 'source_db' ], 'pg_dump of a database with configs');
$node->safe_psql('postgres', 'CREATE DATABASE restored_db');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', 'restored_db', $dump ], 'pg_restore into a new database');

is($node->safe_psql('restored_db', $registry), $before, 'the restored registry equals the original');
is($node->safe_psql('restored_db', q{SELECT reader FROM config_guard.readers}), 'dump_reader', 'grants are restored');
is($node->safe_psql('restored_db', q{SELECT role || ' ' || max_active || ' ' || max_queued || ' ' || queue_timeout
                                      FROM config_guard.role_limits}),
  'dump_svc 3 10 00:00:02', 'role limits are restored');
is($node->safe_psql('restored_db', q{SELECT config_guard.get('customer', '00000000-0000-0000-0000-000000000001'::uuid)}),
  '{"flags": 25}', 'documents are rebuilt on first use in the restored database');
is($node->safe_psql('restored_db', $walk), '20', 'export works in the restored database');

# A new definition after the restore gets an id that no restored config has.
$node->safe_psql('restored_db',
  q{SELECT config_guard.define('again', 'app.build(uuid)', ARRAY['app.segments']::regclass[])});
is($node->safe_psql('restored_db', 'SELECT count(DISTINCT config_id) FROM config_guard.configs'),
  '2', 'config ids stay unique after a restore');

# Cursors are bound to their database: one issued by the source database
# means nothing in the restored one, even for the same definitions.
my $cursor = $node->safe_psql('source_db',
  q{SELECT cursor FROM config_guard.export_page('customer', '00000000-0000-0000-0000-000000000001'::uuid, NULL, 3) OFFSET 2});
my ($rc, $out, $err) = $node->psql('restored_db',
  qq{SELECT count(*) FROM config_guard.export_page('customer', '00000000-0000-0000-0000-000000000001'::uuid, '$cursor', 100)});
like($err, qr/invalid export cursor: the cursor was altered, or was not issued for this config definition and database/,
  'a cursor of the source database is refused by the restored one');
is($node->safe_psql('source_db',
  qq{SELECT count(*) FROM config_guard.export_page('customer', '00000000-0000-0000-0000-000000000001'::uuid, '$cursor', 100)}),
  '27', 'and still continues its walk in the database that issued it');

# A restore into a database made from a template that has config_guard (its
# configs table has the same oid as in every copy of the template): the
# restored rows are still from elsewhere and adopt their builders, also when
# the first caller is a granted reader without USAGE on the builder's schema.
$node->safe_psql('postgres', 'CREATE DATABASE tmpl');
$node->safe_psql('tmpl', 'CREATE EXTENSION config_guard');
$node->safe_psql('postgres', 'CREATE DATABASE from_tmpl TEMPLATE tmpl');
# (pg_restore reports the extension's schema, which the template has, as an error it ignores)
($rc, $out, $err) = $node->psql('postgres', 'SELECT 1');
IPC::Run::run([ 'pg_restore', '-d', 'from_tmpl', '-h', $node->host, '-p', $node->port, $dump ], '>', \$out, '2>', \$err);
like($err, qr/errors ignored on restore: 1\b/, 'pg_restore into a copy of a template with config_guard');
unlike($err, qr/config_guard\.(configs|config_sources|readers)/, 'and the registry rows went in');
is($node->safe_psql('from_tmpl', qq{SET ROLE dump_reader; SELECT config_guard.get('customer', $tenant)}),
  '{"flags": 25}', 'a granted reader\'s first get() finds the builder by its signature');
is($node->safe_psql('from_tmpl', q{SELECT builder = 'app.build(uuid)'::regprocedure FROM config_guard.configs}), 't',
  'and the row adopted it');
($rc, $out, $err) = $node->psql('from_tmpl', 'DROP FUNCTION app.build(uuid)');
like($err, qr/config "customer" depends on it/, 'the adopted builder cannot be dropped');

# Adoption never makes anyone wait: a reader whose open transaction adopted a
# row holds its lock, and another reader and an unrelated rename go on.
$node->safe_psql('postgres', 'CREATE DATABASE locks_db');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', 'locks_db', $dump ], 'another restore');
$node->safe_psql('locks_db', 'CREATE FUNCTION public.unrelated() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$');
my $holder = $node->background_psql('locks_db');
$holder->query_safe('BEGIN');
$holder->query_safe(qq{SELECT config_guard.get('customer', $tenant)});
is($node->safe_psql('locks_db', q{SET lock_timeout = '3s';
  SELECT config_guard.get('customer', '00000000-0000-0000-0000-000000000002'::uuid)}),
  '{"flags": 0}', 'a second reader does not wait for the first one\'s adoption');
($rc, $out, $err) = $node->psql('locks_db', q{SET lock_timeout = '3s'; ALTER FUNCTION public.unrelated() RENAME TO unrelated2});
is($rc, 0, 'nor does an unrelated rename') or diag($err);
$holder->query_safe('COMMIT');
$holder->quit;

$node->stop;
unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC/, 'no crash in the server log');
done_testing();

# Real drivers: psycopg 3 and node-postgres call get(), export_page() and
# invalidate() with the tenant as a parameter (int, bigint, text, uuid; typed,
# untyped, binary), with every statement prepared on the server, then again
# through PgBouncer in transaction mode. The scripts (test/drivers/) check each
# answer against a direct builder call. node-postgres comes from npm (pinned
# in test/drivers/node/package.json); without node or the registry its checks
# are skipped with the reason.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ConfigGuard::Test;
use IPC::Run;
use FindBin;

my $python = '/usr/bin/python3';
plan skip_all => 'python3-psycopg is not installed'
  unless system($python, '-c', 'import psycopg') == 0;
my $script = "$FindBin::Bin/../drivers/psycopg_check.py";

# node-postgres, installed from npm into a scratch copy of test/drivers/node
my $node_dir = PostgreSQL::Test::Utils::tempdir . '/node';
my $node_skip;
if (system('sh', '-c', 'command -v node >/dev/null && command -v npm >/dev/null') != 0) {
  $node_skip = 'node or npm is not installed';
} else {
  system('cp', '-r', "$FindBin::Bin/../drivers/node", $node_dir) == 0 or die "cannot copy the node check";
  my ($npm_out, $npm_err) = ('', '');
  IPC::Run::run([ 'npm', 'install', '--no-audit', '--no-fund', '--prefix', $node_dir,
                  '--cache', "$node_dir/.npm" ], '>', \$npm_out, '2>', \$npm_err);
  $node_skip = "npm install failed: $npm_err" if $? != 0;
}

my $node = preloaded_node('drivers');
$node->safe_psql('postgres', q{
  CREATE EXTENSION config_guard;
  CREATE TABLE items_int (tenant_id int NOT NULL, id int NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id));
  CREATE TABLE items_big (tenant_id bigint NOT NULL, id int NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id));
  CREATE TABLE items_text (tenant_id text NOT NULL, id int NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id));
  CREATE TABLE items_uuid (tenant_id uuid NOT NULL, id int NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id));
  INSERT INTO items_int VALUES (1, 1, 'a'), (1, 2, 'b');
  INSERT INTO items_big VALUES (1099511627776, 1, 'a'), (1099511627776, 2, 'b');
  INSERT INTO items_text VALUES ('acme', 1, 'a'), ('acme', 2, 'b');
  INSERT INTO items_uuid VALUES ('00000000-0000-0000-0000-000000000001', 1, 'a'),
                                ('00000000-0000-0000-0000-000000000001', 2, 'b');
  CREATE FUNCTION build_int(t int) RETURNS jsonb LANGUAGE sql STABLE AS
    $$ SELECT jsonb_agg(v ORDER BY id) FROM items_int WHERE tenant_id = t $$;
  CREATE FUNCTION build_big(t bigint) RETURNS jsonb LANGUAGE sql STABLE AS
    $$ SELECT jsonb_agg(v ORDER BY id) FROM items_big WHERE tenant_id = t $$;
  CREATE FUNCTION build_text(t text) RETURNS jsonb LANGUAGE sql STABLE AS
    $$ SELECT jsonb_agg(v ORDER BY id) FROM items_text WHERE tenant_id = t $$;
  CREATE FUNCTION build_uuid(t uuid) RETURNS jsonb LANGUAGE sql STABLE AS
    $$ SELECT jsonb_agg(v ORDER BY id) FROM items_uuid WHERE tenant_id = t $$;
  SELECT config_guard.define('int_cfg', 'build_int(int)', ARRAY['items_int']::regclass[]);
  SELECT config_guard.define('big_cfg', 'build_big(bigint)', ARRAY['items_big']::regclass[]);
  SELECT config_guard.define('text_cfg', 'build_text(text)', ARRAY['items_text']::regclass[]);
  SELECT config_guard.define('uuid_cfg', 'build_uuid(uuid)', ARRAY['items_uuid']::regclass[]);
  CREATE ROLE svc LOGIN;
  GRANT USAGE ON SCHEMA public TO svc;
  GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO svc;
  ALTER FUNCTION build_int(int) OWNER TO svc;
  ALTER FUNCTION build_big(bigint) OWNER TO svc;
  ALTER FUNCTION build_text(text) OWNER TO svc;
  ALTER FUNCTION build_uuid(uuid) OWNER TO svc;
});

sub run_script {
  my ($conninfo, $mode) = @_;
  my ($out, $err) = ('', '');
  IPC::Run::run([ $python, $script, $conninfo, $mode ], '>', \$out, '2>', \$err);
  my $exit = $? >> 8;
  note($out);
  is($exit, 0, "psycopg, $mode: every check passed") or diag($out . $err);
  like($out, qr/^0 failed$/m, "psycopg, $mode: the script ran to its end");
  my $checks = () = $out =~ /^ok - /mg;
  cmp_ok($checks, '>=', 23, "psycopg, $mode: $checks checks");
}

sub run_node_check {
  my ($host, $port, $mode) = @_;
  SKIP: {
    skip $node_skip, 3 if $node_skip;
    my ($out, $err) = ('', '');
    local $ENV{PGHOST} = $host;
    local $ENV{PGPORT} = $port;
    local $ENV{PGUSER} = 'svc';
    local $ENV{PGDATABASE} = 'postgres';
    IPC::Run::run([ 'node', "$node_dir/check.js", $mode ], '>', \$out, '2>', \$err);
    my $exit = $? >> 8;
    note($out);
    is($exit, 0, "node-postgres, $mode: every check passed") or diag($out . $err);
    like($out, qr/^0 failed$/m, "node-postgres, $mode: the script ran to its end");
    my $checks = () = $out =~ /^ok - /mg;
    cmp_ok($checks, '>=', 18, "node-postgres, $mode: $checks checks");
  }
}

my $host = $node->host;
my $node_port = $node->port;
run_script("host=$host port=$node_port dbname=postgres user=svc", 'direct');
run_node_check($host, $node_port, 'direct');

SKIP: {
  my $pgbouncer = '/usr/sbin/pgbouncer';
  skip 'pgbouncer is not installed', 7 unless -x $pgbouncer;
  my ($bouncer, $port) = start_pgbouncer($node, 'svc', 2);
  ok($bouncer, 'pgbouncer started');
  run_script("host=127.0.0.1 port=$port dbname=postgres user=svc", 'pooled');
  run_node_check('127.0.0.1', $port, 'pooled');
  $bouncer->kill_kill if $bouncer;
}

unlike(slurp_file($node->logfile), qr/terminated by signal|TRAP:|PANIC/, 'no crash in the server log');
$node->stop;
done_testing();

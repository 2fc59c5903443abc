# Compaction with the default settings: 30,000 write transactions on tenants
# nobody reads (one without a document, one whose stored document is stale)
# leave a few marks (most writes are covered) and a few rows in the
# extension's tables within 30 s, the stale document
# stays stale until rebuilt, and an export walk that spans the compaction goes
# of another tenant on without a restart.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use ConfigGuard::Test;

my $node = preloaded_node('compaction');
$node->safe_psql('postgres', q{
  CREATE EXTENSION config_guard;
  CREATE TABLE items (tenant_id int NOT NULL, id int NOT NULL, v int NOT NULL, PRIMARY KEY (tenant_id, id));
  INSERT INTO items SELECT t, g, 0 FROM generate_series(1, 3) t, generate_series(1, 4) g;
  CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE sql STABLE
    AS $$ SELECT jsonb_build_object('v', (SELECT sum(v) FROM items WHERE tenant_id = tenant)) $$;
  SELECT config_guard.define('cfg', 'build(int)', ARRAY['items']::regclass[]);
  SELECT config_guard.get('cfg', 2);
});
# an export walk of tenant 3 begins: its first page
my $cursor = $node->safe_psql('postgres', q{SELECT cursor FROM config_guard.export_page('cfg', 3, NULL, 1)});

my $script = $node->basedir . '/writes.sql';
append_to_file($script, "\\set t random(1, 2)\nUPDATE items SET v = v + 1 WHERE tenant_id = :t AND id = 1;\n");
$node->command_ok([ 'pgbench', '-n', '-c', '4', '-j', '2', '-t', '7500', '-f', $script, 'postgres' ],
  '30,000 write transactions on tenant 1 (no document) and tenant 2 (a stale one)');
my $start = time;
my $rows;
for (;;) {
  $rows = $node->safe_psql('postgres', 'SELECT count(*) FROM config_guard.invalidations');
  last if $rows <= 2000 || time - $start > 60;
  sleep 1;
}
my $took = time - $start;
cmp_ok($rows, '<=', 2000, "marks left: $rows");
cmp_ok($took, '<=', 30, sprintf('within %.0f s of the last write', $took));
# Once a tenant's document is stale (or it has none), the writes that follow
# are covered by its mark and add none (mark_skip.hpp): the marks, and the
# rows left, stand for invalidations, not write transactions. (The cleanup's
# prunes and compactions end every covering: the next write marks again.)
my $marks = $node->safe_psql('postgres', q{
  SELECT (SELECT sum(weight) FROM config_guard.invalidations WHERE tenant IN ('1', '2'))
       + (SELECT compacted FROM config_guard.documents WHERE tenant = '2')});
cmp_ok($marks, '>=', 2, 'each written tenant has a mark');
cmp_ok($marks, '<=', 1000, "$marks marks for 30,000 write transactions");

# the walk goes on: the compaction moved nothing it counts
my ($rc, $out, $err) = $node->psql('postgres',
  qq{SELECT count(*) FROM config_guard.export_page('cfg', 3, '$cursor', 10)});
is($rc, 0, 'the export walk that began before the compaction goes on') or diag($err);
is($out, '3', 'with the rest of the tenant');

is($node->safe_psql('postgres', q{SELECT config_guard.get('cfg', 2) = build(2)}), 't',
  'the stale document is rebuilt, not served');
is($node->safe_psql('postgres', q{SELECT config_guard.get('cfg', 1) = build(1)}), 't', 'tenant 1 as well');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'config_guard launcher'}),
  '1', 'the launcher is still there');
$node->stop;
unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC|cleanup of database .* stopped/,
  'no crash or cleanup error in the server log');
done_testing();

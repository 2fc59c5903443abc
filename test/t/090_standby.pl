# A streaming replica: documents replicate with their marks; on the standby
# get() serves fresh documents, never a stale one (the marks arrive by WAL
# replay; with standby_rebuild off, the standby cannot store, so it builds
# without storing); after a failover the promoted node serves and stores as a
# primary.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'config_guard'");
$primary->start;
$primary->safe_psql('postgres', q{
  CREATE EXTENSION config_guard;
  CREATE TABLE items (tenant_id int NOT NULL, id int NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id));
  INSERT INTO items VALUES (1, 1, 'one'), (2, 1, 'two');
  CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('v', (SELECT string_agg(v, ',' ORDER BY id) FROM items WHERE tenant_id = tenant)) $$;
  SELECT config_guard.define('items', 'build(int)', ARRAY['items']::regclass[]);
  SELECT config_guard.get('items', 1), config_guard.get('items', 2);
});
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
# (building on the standby itself: asking the primary is 260_standby_rebuild.pl)
$standby->append_conf('postgresql.conf', 'config_guard.standby_rebuild = off');
$standby->start;
$primary->wait_for_catchup($standby);

my $get = q{SELECT config_guard.get('items', 1) ->> 'v'};
is($standby->safe_psql('postgres', $get), 'one', 'the standby serves the replicated document');
is($standby->safe_psql('postgres', $get), 'one', 'and again');

# a long-lived standby session, which could remember a document as fresh
my $reader = $standby->background_psql('postgres');
is($reader->query_safe($get), 'one', 'a standby session reads the document');
is($reader->query_safe($get), 'one', 'twice');

$primary->safe_psql('postgres', q{UPDATE items SET v = 'ONE' WHERE tenant_id = 1});
$primary->wait_for_catchup($standby);
is($reader->query_safe($get), 'ONE', 'after replay, the same standby session sees the change');
is($standby->safe_psql('postgres', $get), 'ONE', 'so does a new one');
is($standby->safe_psql('postgres', q{SELECT count(*) FROM config_guard.invalidations}), '1',
  'the standby built without storing (the mark is still there)');
$reader->quit;

# the cursor key travels with the base backup: a walk begun on the primary
# continues on the standby, and after a failover
$primary->safe_psql('postgres', q{INSERT INTO items SELECT 3, g, 'r' FROM generate_series(1, 5) g});
$primary->wait_for_catchup($standby);
my $cursor = $primary->safe_psql('postgres',
  q{SELECT cursor FROM config_guard.export_page('items', 3, NULL, 2) OFFSET 1});
my $rest = qq{SELECT count(*) FROM config_guard.export_page('items', 3, '$cursor', 10)};
is($standby->safe_psql('postgres', $rest), '3', 'a cursor of the primary continues on the standby');

# A walk that detects changes, page by page on the standby: the standby
# cannot fence the primary, where writes to a stale tenant leave no mark
# (covered writes), so it starts only on a tenant without marks.
# (Without export versions: the version the primary made would serve it.)
my ($rc, $out, $err) = $standby->psql('postgres',
  q{SET config_guard.export_versions = off; SELECT count(*) FROM config_guard.export_page('items', 3, NULL, 2)});
isnt($rc, 0, 'a detecting walk of a stale tenant is refused on the standby');
like($err, qr/while the tenant is stale/, 'and says why');
is($standby->safe_psql('postgres', q{SET config_guard.export_versions = off;
  SELECT count(*) FROM config_guard.export_page('items', 2, NULL, 2)}), '1', 'a tenant without marks is walked');
is($standby->safe_psql('postgres', q{SET config_guard.export_versions = off; SET config_guard.export_detects_changes = off;
  SELECT count(*) FROM config_guard.export_page('items', 3, NULL, 2)}), '2',
  'without change detection the stale tenant is walked too');

# failover
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'promotion failed';
is($standby->safe_psql('postgres', $get), 'ONE', 'the promoted node serves the document');
is($standby->safe_psql('postgres', q{SELECT count(*) FROM config_guard.invalidations WHERE tenant = '1'}), '0',
  'and stores its rebuild');
$standby->safe_psql('postgres', q{UPDATE items SET v = 'uno' WHERE tenant_id = 1});
is($standby->safe_psql('postgres', $get), 'uno', 'writes on the promoted node invalidate');
is($standby->safe_psql('postgres', q{SELECT config_guard.get('items', 2) ->> 'v'}), 'two', 'other tenants stay fresh');
is($standby->safe_psql('postgres', $rest), '3', 'and on the promoted node');

$standby->stop;
$primary->stop;
done_testing();

# A logical replication subscriber with a config over the replicated tables:
# the apply worker fires row triggers only (and TRUNCATE's statement
# triggers), so every replicated INSERT, UPDATE, DELETE and TRUNCATE, into a
# plain table or a partition, must still invalidate there. The judge: get() on
# the subscriber equals a direct builder call after each change.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $schema = q{
  CREATE TABLE items (tenant_id int NOT NULL, id int NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id));
  CREATE TABLE parts (tenant_id int NOT NULL, region text NOT NULL, id int NOT NULL,
                      PRIMARY KEY (tenant_id, region, id)) PARTITION BY LIST (region);
  CREATE TABLE parts_eu PARTITION OF parts FOR VALUES IN ('eu');
  CREATE TABLE parts_us PARTITION OF parts FOR VALUES IN ('us');
};

my $publisher = PostgreSQL::Test::Cluster->new('publisher');
$publisher->init(allows_streaming => 'logical');
$publisher->start;
$publisher->safe_psql('postgres', $schema . q{
  INSERT INTO items VALUES (1, 1, 'a'), (2, 1, 'b');
  INSERT INTO parts VALUES (1, 'eu', 1), (2, 'us', 1);
  CREATE PUBLICATION pub FOR TABLE items, parts WITH (publish_via_partition_root = false);
});

my $subscriber = PostgreSQL::Test::Cluster->new('subscriber');
$subscriber->init;
$subscriber->append_conf('postgresql.conf', "shared_preload_libraries = 'config_guard'");
$subscriber->start;
$subscriber->safe_psql('postgres', $schema . q{
  CREATE EXTENSION config_guard;
  CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
      'items', (SELECT jsonb_agg(v ORDER BY id) FROM items WHERE tenant_id = tenant),
      'parts', (SELECT jsonb_agg(region || id ORDER BY region, id) FROM parts WHERE tenant_id = tenant)) $$;
  SELECT config_guard.define('cfg', 'build(int)', ARRAY['items', 'parts']::regclass[]);
});
my $connstr = $publisher->connstr . ' dbname=postgres';
$subscriber->safe_psql('postgres', "CREATE SUBSCRIPTION sub CONNECTION '$connstr' PUBLICATION pub");
$subscriber->wait_for_subscription_sync($publisher, 'sub');

my $fresh = q{SELECT bool_and(config_guard.get('cfg', t) = build(t)) FROM generate_series(1, 3) t};
my $warm = q{SELECT count(config_guard.get('cfg', t)) FROM generate_series(1, 3) t};
is($subscriber->safe_psql('postgres', $fresh), 't', 'the synchronized rows are served');

sub replicate {
  my ($sql, $what) = @_;
  $subscriber->safe_psql('postgres', $warm);
  $publisher->safe_psql('postgres', $sql);
  $publisher->wait_for_catchup('sub');
  is($subscriber->safe_psql('postgres', $fresh), 't', "after a replicated $what, get() equals the builder");
}

replicate(q{INSERT INTO items VALUES (1, 2, 'c')}, 'INSERT');
replicate(q{UPDATE items SET v = 'B' WHERE tenant_id = 2}, 'UPDATE');
replicate(q{UPDATE items SET tenant_id = 3 WHERE tenant_id = 1 AND id = 2}, 'UPDATE moving a row to another tenant');
replicate(q{DELETE FROM items WHERE tenant_id = 1}, 'DELETE');
replicate(q{INSERT INTO items SELECT 2, g, 'x' FROM generate_series(10, 500) g}, 'bulk INSERT');
replicate(q{INSERT INTO parts VALUES (1, 'us', 7)}, 'INSERT into a partitioned table');
replicate(q{UPDATE parts_eu SET id = 9 WHERE tenant_id = 1}, 'UPDATE of a partition');
replicate(q{DELETE FROM parts WHERE tenant_id = 2}, 'DELETE from a partitioned table');
replicate(q{BEGIN; INSERT INTO items VALUES (3, 5, 'y'); UPDATE parts SET id = 3 WHERE tenant_id = 1; COMMIT;},
  'transaction over both sources');
replicate(q{TRUNCATE parts}, 'TRUNCATE');
replicate(q{TRUNCATE items}, 'TRUNCATE of a plain table');

# a bulk apply of one tenant writes one mark, not one per row
$subscriber->safe_psql('postgres', $warm);
$subscriber->safe_psql('postgres', q{SELECT config_guard.prune_invalidations('0')});
my $before = $subscriber->safe_psql('postgres', q{SELECT count(*) FROM config_guard.invalidations});
$publisher->safe_psql('postgres', q{INSERT INTO items SELECT 1, g, 'z' FROM generate_series(1, 1000) g});
$publisher->wait_for_catchup('sub');
is($subscriber->safe_psql('postgres', q{SELECT count(*) FROM config_guard.invalidations}) - $before, 1,
  'a replicated 1000-row INSERT of one tenant leaves one mark');
is($subscriber->safe_psql('postgres', $fresh), 't', 'and get() follows it');

# a get() inside the applied transaction (here from a subscriber-side trigger)
# folds the transaction's marks into the document it stores: the rows applied
# after it must mark again
$subscriber->safe_psql('postgres', q{
  CREATE TABLE audit (tenant int, doc jsonb);
  CREATE FUNCTION audit_fn() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO public.audit VALUES (NEW.tenant_id, config_guard.get('cfg', NEW.tenant_id)); RETURN NULL; END $$;
  CREATE TRIGGER zz_audit AFTER INSERT ON items FOR EACH ROW EXECUTE FUNCTION audit_fn();
  ALTER TABLE items ENABLE ALWAYS TRIGGER zz_audit;
});
replicate(q{INSERT INTO items VALUES (3, 101, 'p'), (3, 102, 'q'), (3, 103, 'r')},
  'INSERT whose rows call get() in between');
is($subscriber->safe_psql('postgres', q{SELECT count(*) FROM audit}), '3', 'the get() ran for each applied row');
$subscriber->safe_psql('postgres', q{DROP TRIGGER zz_audit ON items});

# ordinary writes on the subscriber keep using the statement triggers only
is($subscriber->safe_psql('postgres', q{
    SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'config_guard_%_replica' AND tgenabled = 'R'}),
  '3', 'one row trigger per ordinary table, in replica mode');

my $log = slurp_file($subscriber->logfile);
unlike($log, qr/terminated by signal|TRAP:|PANIC/, 'no crash in the subscriber log');
like($log, qr/logical replication apply worker for subscription "sub" has started/, 'the apply worker ran');
unlike($log, qr/ERROR/, 'the apply worker hit no error');

$subscriber->stop;
$publisher->stop;
done_testing();

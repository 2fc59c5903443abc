# Two-phase commit: a transaction that wrote marks is prepared, the server
# restarts (shared memory starts from zero), a session verifies a document,
# then COMMIT PREPARED: that session must not keep serving the old document.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ConfigGuard::Test;

my $node = preloaded_node('twophase', 'max_prepared_transactions = 5');
$node->safe_psql('postgres', q{
  CREATE EXTENSION config_guard;
  CREATE TABLE items (tenant_id int NOT NULL, id int NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id));
  INSERT INTO items VALUES (1, 1, 'old');
  CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('v', (SELECT string_agg(v, ',') FROM items WHERE tenant_id = tenant)) $$;
  SELECT config_guard.define('items', 'build(int)', ARRAY['items']::regclass[]);
  SELECT config_guard.get('items', 1);
  BEGIN;
  UPDATE items SET v = 'new' WHERE tenant_id = 1;
  PREPARE TRANSACTION 'cg_marks';
});
$node->restart;

my $get = q{SELECT config_guard.get('items', 1) ->> 'v'};
my $reader = $node->background_psql('postgres');
is($reader->query_safe($get), 'old', 'while prepared, the stored document is fresh');
is($reader->query_safe($get), 'old', 'and again (the session has verified it)');
$node->safe_psql('postgres', q{COMMIT PREPARED 'cg_marks'});
is($reader->query_safe($get), 'new', 'after COMMIT PREPARED the same session sees the change');
is($node->safe_psql('postgres', $get), 'new', 'so does a new one');

# once no prepared transaction is left, hits skip the probes again (and stay right)
sleep 1.1;
is($reader->query_safe($get), 'new', 'a hit after the prepared transactions are gone');
$node->safe_psql('postgres', q{UPDATE items SET v = 'newer' WHERE tenant_id = 1});
is($reader->query_safe($get), 'newer', 'a later write is seen');
$reader->quit;

# A prepared transaction writes its marks even where another mark covers them
# (mark_skip.hpp): the covering lives in shared memory, which a restart
# clears, while the prepared transaction lives on.
$node->safe_psql('postgres', q{
  SELECT config_guard.get('items', 1);
  UPDATE items SET v = 'covering' WHERE tenant_id = 1;
  BEGIN;
  UPDATE items SET v = 'prepared' WHERE tenant_id = 1;
  PREPARE TRANSACTION 'cg_covered';
});
$node->restart;
is($node->safe_psql('postgres', $get), 'covering', 'a rebuild after the restart folds the covering mark');
$node->safe_psql('postgres', q{COMMIT PREPARED 'cg_covered'});
is($node->safe_psql('postgres', $get), 'prepared', 'the prepared write, covered when it was made, is seen after COMMIT PREPARED');

# DROP EXTENSION in a transaction that wrote to a source: the marks waiting
# for the commit go with the extension, and the commit succeeds.
$node->safe_psql('postgres', q{
  BEGIN;
  UPDATE items SET v = 'last' WHERE tenant_id = 1;
  DROP EXTENSION config_guard CASCADE;
  COMMIT;
});
is($node->safe_psql('postgres', q{SELECT v FROM items WHERE tenant_id = 1}), 'last',
  'a write and DROP EXTENSION in one transaction commit');

$node->stop;
unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC/, 'no crash in the server log');
done_testing();

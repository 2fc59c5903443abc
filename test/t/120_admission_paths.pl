# Admission slots on every path: a failed FETCH inside a savepoint, an idle
# transaction with an open cursor, a DO block, limit changes rolled back to a
# savepoint or prepared, and a damaged limits file.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ConfigGuard::Test;
use IPC::Run;

my $node = preloaded_node('paths', 'max_prepared_transactions = 5');
$node->safe_psql('postgres', q{
  CREATE EXTENSION config_guard;
  CREATE ROLE svc LOGIN;
  CREATE ROLE other LOGIN;
  SELECT config_guard.set_role_limit('svc', 1, 4, '500ms');
});
my $active = q{SELECT active || '/' || queued FROM config_guard.role_stats WHERE role = 'svc'::regrole};
my $as_svc = sub { $node->psql('postgres', $_[0], extra_params => [ '-U', 'svc' ]) };

# a FETCH that fails inside a savepoint, ROLLBACK TO, COMMIT: nothing held after
my ($rc, $out, $err) = $as_svc->(q{
  BEGIN;
  DECLARE c CURSOR FOR SELECT 1 / (g - 2) FROM generate_series(1, 3) g;
  SAVEPOINT s;
  FETCH ALL FROM c;
  ROLLBACK TO SAVEPOINT s;
  COMMIT;
});
like($err, qr/division by zero/, 'the FETCH failed inside the savepoint');
is($node->safe_psql('postgres', $active), '0/0', 'and left no slot held');
($rc, $out, $err) = $as_svc->('SELECT 42');
is($out, '42', 'the next statement of the role runs at once');

# an idle transaction with an open cursor holds no slot; a FETCH takes one
my $idle = $node->background_psql('postgres', extra_params => [ '-U', 'svc' ]);
$idle->query_safe('BEGIN');
$idle->query_safe('DECLARE c CURSOR FOR SELECT g FROM generate_series(1, 100) g');
is($idle->query_safe('FETCH 10 FROM c'), join("\n", 1 .. 10), 'a FETCH runs');
is($node->safe_psql('postgres', $active), '0/0', 'the idle transaction with an open cursor holds no slot');
($rc, $out, $err) = $as_svc->('SELECT 43');
is($out, '43', 'another session of the role runs meanwhile');
is($idle->query_safe('FETCH 2 FROM c'), "11\n12", 'and the cursor goes on');
$idle->query_safe('COMMIT');
$idle->quit;

# planning is inside the slot: an immutable function folded into a constant
# at planning time runs under the limit
$node->safe_psql('postgres', q{
  -- (an assignment is a simple expression: it runs no executor of its own)
  CREATE FUNCTION slow_constant(int) RETURNS int LANGUAGE plpgsql IMMUTABLE
    AS $$ DECLARE done boolean; BEGIN done := pg_advisory_xact_lock_shared(11) IS NULL; RETURN $1; END $$;
  GRANT EXECUTE ON FUNCTION slow_constant(int) TO svc;
});
my $lock11 = $node->background_psql('postgres');
$lock11->query_safe('SELECT pg_advisory_lock(11)');
my $planning = $node->background_psql('postgres', on_error_stop => 0, extra_params => [ '-U', 'svc' ]);
$planning->query_until(qr/sent/, "\\echo sent\nSELECT g FROM generate_series(1, 3) g WHERE g = slow_constant(2);\n");
$node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE usename = 'svc' AND wait_event = 'advisory'})
  or die 'the planning did not start';
is($node->safe_psql('postgres', $active), '1/0', 'a statement being planned holds the slot');
($rc, $out, $err) = $as_svc->("\\set VERBOSITY verbose\nSELECT 45");
like($err, qr/55P03/, 'the role\'s next statement waits behind the planning, then times out');
$lock11->query_safe('SELECT pg_advisory_unlock(11)');
$planning->quit;
$lock11->quit;
$node->poll_query_until('postgres', q{SELECT active = 0 FROM config_guard.role_stats WHERE role = 'svc'::regrole})
  or die 'the planning kept its slot';

# a DO block takes a slot like any statement that does work
my $admin = $node->background_psql('postgres');
$admin->query_safe('SELECT pg_advisory_lock(9)');
my $do = $node->background_psql('postgres', on_error_stop => 0, extra_params => [ '-U', 'svc' ]);
$do->query_until(qr/sent/, "\\echo sent\nDO \$\$ BEGIN PERFORM pg_advisory_xact_lock_shared(9); END \$\$;\n");
$node->poll_query_until('postgres', q{SELECT active = 1 FROM config_guard.role_stats WHERE role = 'svc'::regrole})
  or die 'the DO block took no slot';
($rc, $out, $err) = $as_svc->("\\set VERBOSITY verbose\nSELECT 44");
like($err, qr/55P03/, 'while it runs, the role\'s next statement waits, then times out');
$admin->query_safe('SELECT pg_advisory_unlock(9)');
$do->quit;
$admin->quit;
$node->poll_query_until('postgres', q{SELECT active = 0 FROM config_guard.role_stats WHERE role = 'svc'::regrole})
  or die 'the DO block kept its slot';

# a procedure that rolls back keeps its slot to its end, then gives it back
$node->safe_psql('postgres', q{
  CREATE PROCEDURE rolls_back() LANGUAGE plpgsql AS $$ BEGIN ROLLBACK; PERFORM pg_sleep(0.1); END $$;
  GRANT EXECUTE ON PROCEDURE rolls_back() TO svc;
  CREATE TABLE kept (v int);
  GRANT INSERT, SELECT ON kept TO svc;
});
($rc, $out, $err) = $as_svc->(q{CALL rolls_back(); DO $$ BEGIN PERFORM 1; END $$; SELECT 'after the call'});
is($out, 'after the call', 'after a CALL whose procedure rolled back, the next statements run');
is($node->safe_psql('postgres', $active), '0/0', 'and no slot is left held');

# COMMIT never waits in the queue, even with an open cursor to close
my $committer = $node->background_psql('postgres', extra_params => [ '-U', 'svc' ]);
$committer->query_safe('BEGIN');
$committer->query_safe('INSERT INTO kept VALUES (1)');
$committer->query_safe('DECLARE k CURSOR FOR SELECT g FROM generate_series(1, 10) g');
$committer->query_safe('FETCH 1 FROM k');
$admin = $node->background_psql('postgres');
$admin->query_safe('SELECT pg_advisory_lock(10)');
my $holder = $node->background_psql('postgres', on_error_stop => 0, extra_params => [ '-U', 'svc' ]);
$holder->query_until(qr/sent/, "\\echo sent\nSELECT pg_advisory_xact_lock_shared(10);\n");
$node->poll_query_until('postgres', q{SELECT active = 1 FROM config_guard.role_stats WHERE role = 'svc'::regrole})
  or die 'the holder took no slot';
$committer->query_safe('COMMIT');
is($node->safe_psql('postgres', q{SELECT count(*) FROM kept}), '1', 'COMMIT went through while the slot was taken');
$admin->query_safe('SELECT pg_advisory_unlock(10)');
$holder->quit;
$admin->quit;
$committer->quit;

# ... nor with a WITH HOLD cursor that COMMIT has to persist
$committer = $node->background_psql('postgres', extra_params => [ '-U', 'svc' ]);
$committer->query_safe('BEGIN');
$committer->query_safe('INSERT INTO kept VALUES (2)');
$committer->query_safe('DECLARE h CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 10) g');
$admin = $node->background_psql('postgres');
$admin->query_safe('SELECT pg_advisory_lock(11)');
$holder = $node->background_psql('postgres', on_error_stop => 0, extra_params => [ '-U', 'svc' ]);
$holder->query_until(qr/sent/, "\\echo sent\nSELECT pg_advisory_xact_lock_shared(11);\n");
$node->poll_query_until('postgres', q{SELECT active = 1 FROM config_guard.role_stats WHERE role = 'svc'::regrole})
  or die 'the holder took no slot';
$committer->query_safe('COMMIT');
is($node->safe_psql('postgres', q{SELECT count(*) FROM kept WHERE v = 2}), '1',
  'COMMIT persisting a WITH HOLD cursor went through while the slot was taken');
$admin->query_safe('SELECT pg_advisory_unlock(11)');
$holder->quit;
$admin->quit;
$committer->quit;

# a SELECT whose data-modifying WITH does its work after the rows holds the slot for it
my $cte = $node->background_psql('postgres', on_error_stop => 0, extra_params => [ '-U', 'svc' ]);
$cte->query_until(qr/sent/, "\\echo sent\nWITH d AS (INSERT INTO kept SELECT 3 FROM pg_sleep(2)) SELECT 1;\n");
$node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE usename = 'svc' AND wait_event = 'PgSleep'})
  or die 'the WITH never ran';
is($node->safe_psql('postgres', $active), '1/0', 'the data-modifying WITH runs inside the slot');
$cte->quit;

# the extended protocol: a session idle in its transaction after a query holds no slot
my ($in, $pgbench_out, $pgbench_err) = ('', '', '');
my $script = $node->basedir . '/idle_extended.sql';
append_to_file($script, "BEGIN;\nSELECT count(*) FROM generate_series(1, 10);\n\\sleep 3 s\nCOMMIT;\n");
my $pgbench = IPC::Run::start(
  [ 'pgbench', '--no-vacuum', '-M', 'extended', '-t', '1', '-f', $script, '-U', 'svc', '-h', $node->host,
    '-p', $node->port, 'postgres' ], \$in, \$pgbench_out, \$pgbench_err);
$node->poll_query_until('postgres',
  q{SELECT count(*) = 1 FROM pg_stat_activity WHERE usename = 'svc' AND state = 'idle in transaction'})
  or die 'pgbench never went idle in its transaction';
is($node->safe_psql('postgres', $active), '0/0', 'idle in transaction after an extended-protocol query: no slot');
($rc, $out, $err) = $as_svc->('SELECT 45');
is($out, '45', 'another session of the role runs meanwhile');
$pgbench->finish;

# a limit change rolled back to a savepoint is not applied; one in a
# transaction that would be prepared is refused
$node->safe_psql('postgres', q{
  BEGIN;
  SAVEPOINT s;
  SELECT config_guard.set_role_limit('svc', 3);
  ROLLBACK TO SAVEPOINT s;
  SELECT config_guard.set_role_limit('other', 2);
  COMMIT;
});
is($node->safe_psql('postgres', q{SELECT max_active FROM config_guard.role_stats WHERE role = 'svc'::regrole}), '1',
  'the change rolled back to its savepoint was not applied');
is($node->safe_psql('postgres', q{SELECT max_active FROM config_guard.role_stats WHERE role = 'other'::regrole}), '2',
  'the change kept by the transaction was');
($rc, $out, $err) = $node->psql('postgres', q{
  BEGIN;
  SELECT config_guard.set_role_limit('svc', 3);
  PREPARE TRANSACTION 'limits';
});
like($err, qr/cannot PREPARE a transaction that has changed role limits/, 'PREPARE with a limit change is refused');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_prepared_xacts}), '0', 'nothing was prepared');
is($node->safe_psql('postgres', q{SELECT max_active FROM config_guard.role_stats WHERE role = 'svc'::regrole}), '1',
  'nor applied');

# the limits file: complete after the changes, and a damaged line is logged
# with its number at the next start, never skipped silently
my $file = $node->data_dir . '/config_guard_role_limits';
my @lines = split /\n/, slurp_file($file);
is(scalar(@lines), 2, 'the limits file holds both limits');
append_to_file($file, "garbage in the file\n");
$node->restart;
like(slurp_file($node->logfile), qr/line 3 of "config_guard_role_limits" is damaged and was skipped/,
  'the damaged line is logged with its number');
is($node->safe_psql('postgres', q{SELECT count(*) FROM config_guard.role_stats}), '2', 'the good lines are applied');

$node->stop;
unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC/, 'no crash in the server log');
done_testing();

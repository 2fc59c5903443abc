# Admission control with real concurrent sessions: the FIFO queue, a full
# queue (53400), a queue timeout (55P03), cancel and statement_timeout while
# queued, limit changes for connected sessions, and no slot ever leaked by an
# error, pg_terminate_backend or a crash; limits survive restart and crash.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ConfigGuard::Test;

my $node = preloaded_node('admission', "max_connections = 50", "restart_after_crash = on");
$node->safe_psql('postgres', q{
  CREATE EXTENSION config_guard;
  CREATE ROLE svc LOGIN;
  SELECT config_guard.set_role_limit('svc', 2, 2, '3s');
});

my $stats = sub {
  $node->safe_psql('postgres', q{SELECT active || '/' || queued FROM config_guard.role_stats WHERE role = 'svc'::regrole});
};
# A session of svc whose statement holds its slot until the admin releases
# advisory lock $key.
my $admin = $node->background_psql('postgres');
my @held;
sub hold {
  my ($key, $name) = @_;
  my $s = $node->background_psql('postgres', on_error_stop => 0, extra_params => [ '-U', 'svc' ]);
  $s->query_until(qr/sent/, "\\echo sent\nSELECT '$name' AS who, pg_advisory_xact_lock_shared($key) IS NULL;\n");
  return $s;
}
sub wait_for {
  my ($sql, $what) = @_;
  $node->poll_query_until('postgres', $sql) or die "timed out waiting for $what";
}

$admin->query_safe('SELECT pg_advisory_lock(1), pg_advisory_lock(2)');
my $h1 = hold(1, 'h1');
my $h2 = hold(2, 'h2');
wait_for(q{SELECT active = 2 FROM config_guard.role_stats WHERE role = 'svc'::regrole}, 'two running');
my $q1 = hold(3, 'q1');
wait_for(q{SELECT queued = 1 FROM config_guard.role_stats WHERE role = 'svc'::regrole}, 'one queued');
my $q2 = hold(3, 'q2');
wait_for(q{SELECT queued = 2 FROM config_guard.role_stats WHERE role = 'svc'::regrole}, 'two queued');
is($stats->(), '2/2', 'two statements run, two wait');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity
                                   WHERE usename = 'svc' AND wait_event_type = 'Extension'}), '2',
  'queued statements show an Extension wait event');

# a full queue refuses at once
my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nSELECT 1", extra_params => [ '-U', 'svc' ]);
like($err, qr/53400: too many statements of role "svc" are waiting/, 'a full queue refuses with 53400');
like($err, qr/DETAIL:\s+2 statements run \(limit 2\) and 2 wait \(queue limit 2\)/, 'the message gives the counts');

# FIFO: when h1 ends, q1 (queued first) runs, not q2
$admin->query_safe('SELECT pg_advisory_lock(3)');
$admin->query_safe('SELECT pg_advisory_unlock(1)');
wait_for(q{SELECT count(*) = 1 FROM pg_stat_activity WHERE usename = 'svc' AND wait_event_type = 'Extension'},
  'q1 admitted');
is($node->safe_psql('postgres', q{SELECT state FROM pg_stat_activity WHERE usename = 'svc' AND query LIKE '%''h1''%'}),
  'idle', 'h1 finished');
# (admitted, q1 still has to finish planning before it reaches the lock)
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE usename = 'svc'
                                          AND query LIKE '%''q1''%' AND wait_event = 'advisory'}),
  'q1, the first in the queue, got the slot');

# cancelling a queued statement takes it out of the queue
my $q2_pid = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE usename = 'svc' AND wait_event_type = 'Extension'});
$node->safe_psql('postgres', "SELECT pg_cancel_backend($q2_pid)");
wait_for(q{SELECT queued = 0 FROM config_guard.role_stats WHERE role = 'svc'::regrole}, 'q2 left the queue');
is($node->safe_psql('postgres', "SELECT state FROM pg_stat_activity WHERE pid = $q2_pid"), 'idle',
  'the cancelled session is idle, not queued');
is($stats->(), '2/0', 'after the cancel: two running, none queued');

# a queue timeout: 55P03 after queue_timeout, with the counts
($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nSELECT 1", extra_params => [ '-U', 'svc' ]);
like($err, qr/55P03: statement of role "svc" waited \d+ ms for a slot/, 'a queue timeout gives 55P03');
# statement_timeout cancels a queued statement too
($ret, $out, $err) = $node->psql('postgres', "SET statement_timeout = '300ms';\nSELECT 1", extra_params => [ '-U', 'svc' ]);
like($err, qr/canceling statement due to statement timeout/, 'statement_timeout cancels a queued statement');
is($stats->(), '2/0', 'timeouts leave nothing behind');

# raising the limit lets a waiting statement of a connected session run at once
$admin->query_safe('SELECT pg_advisory_lock(4)');
my $q3 = hold(4, 'q3');
wait_for(q{SELECT queued = 1 FROM config_guard.role_stats WHERE role = 'svc'::regrole}, 'q3 queued');
$node->safe_psql('postgres', q{SELECT config_guard.set_role_limit('svc', 3, 2, '3s')});
wait_for(q{SELECT active = 3 AND queued = 0 FROM config_guard.role_stats WHERE role = 'svc'::regrole},
  'q3 admitted after the limit change');
pass('a higher limit applies to connected sessions at once');

# pg_terminate_backend of a running statement (a FATAL) returns its slot
my $h2_pid = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE usename = 'svc' AND query LIKE '%''h2''%'});
$node->safe_psql('postgres', "SELECT pg_terminate_backend($h2_pid)");
wait_for(q{SELECT active = 2 FROM config_guard.role_stats WHERE role = 'svc'::regrole}, 'terminated slot returned');
pass('pg_terminate_backend returns the slot');
eval { $h2->quit };

# release everything: nothing leaked
$admin->query_safe('SELECT pg_advisory_unlock_all()');
$q1->query_safe('SELECT 1');
$q3->query_safe('SELECT 1');
wait_for(q{SELECT active = 0 AND queued = 0 FROM config_guard.role_stats WHERE role = 'svc'::regrole}, 'all released');
is($stats->(), '0/0', 'no slot leaked after errors, cancels, timeouts and a terminate');

# A long queue costs no CPU while it waits: each slot is handed to the oldest
# waiter, whose latch alone is set. 30 statements queue behind one slot and
# drain one by one; a waiter must wake about once (the grant), not once per
# statement ahead of it (a broadcast woke every waiter on every release:
# the last one 30 times).
SKIP: {
  skip 'no /proc', 3 unless -r '/proc/self/status';
  $node->safe_psql('postgres', q{CREATE ROLE svc_herd LOGIN;
                                 SELECT config_guard.set_role_limit('svc_herd', 1, 40, '60s')});
  $admin->query_safe('SELECT pg_advisory_lock(10)');
  my @herd;
  push @herd, $node->background_psql('postgres', on_error_stop => 0, extra_params => [ '-U', 'svc_herd' ]);
  $herd[0]->query_until(qr/sent/, "\\echo sent\nSELECT pg_advisory_xact_lock_shared(10) IS NULL;\n");
  wait_for(q{SELECT active = 1 FROM config_guard.role_stats WHERE role = 'svc_herd'::regrole}, 'the holder runs');
  for my $i (1 .. 30) {
    my $s = $node->background_psql('postgres', on_error_stop => 0, extra_params => [ '-U', 'svc_herd' ]);
    $s->query_until(qr/sent/, "\\echo sent\nSELECT pg_sleep(0.02);\n");
    push @herd, $s;
    wait_for("SELECT queued = $i FROM config_guard.role_stats WHERE role = 'svc_herd'::regrole", "waiter $i queued");
  }
  my @pids = split /\n/, $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity
                                                         WHERE usename = 'svc_herd' AND wait_event_type = 'Extension'});
  is(scalar @pids, 30, '30 statements wait for one slot');
  my $switches = sub {
    my %n;
    for my $pid (@pids) {
      open my $f, '<', "/proc/$pid/status" or next;
      while (<$f>) { $n{$pid} = $1 if /^voluntary_ctxt_switches:\s+(\d+)/ }
      close $f;
    }
    return \%n;
  };
  my $before = $switches->();
  $admin->query_safe('SELECT pg_advisory_unlock(10)');
  wait_for(q{SELECT active = 0 AND queued = 0 FROM config_guard.role_stats WHERE role = 'svc_herd'::regrole},
    'the queue drained');
  my $after = $switches->();
  my $most = 0;
  for my $pid (@pids) { my $d = $after->{$pid} - $before->{$pid}; $most = $d if $d > $most }
  cmp_ok($most, '<', 12, "a waiter woke about once while 30 statements drained one by one (most: $most)");
  is($node->safe_psql('postgres', q{SELECT admitted || '/' || ever_queued || '/' || wait_timeouts
                                     FROM config_guard.role_stats WHERE role = 'svc_herd'::regrole}),
     '31/30/0', 'the holder and all 30 waiters ran, none timed out');
  $_->quit for @herd;
  $node->safe_psql('postgres', q{SELECT config_guard.drop_role_limit('svc_herd')});
}

# Limit changes committed together apply as one: a raise then a lower in one
# transaction admits nobody beyond the lower limit; and a shorter queue
# timeout reaches the statements already queued.
$node->safe_psql('postgres', q{CREATE ROLE svc_t LOGIN;
                               SELECT config_guard.set_role_limit('svc_t', 1, 10, '60s')});
$admin->query_safe('SELECT pg_advisory_lock(20)');
my @t_sessions;
for my $i (0 .. 3) {
  my $s = $node->background_psql('postgres', on_error_stop => 0, extra_params => [ '-U', 'svc_t' ]);
  $s->query_until(qr/sent/, "\\echo sent\nSELECT pg_advisory_xact_lock_shared(20) IS NULL;\n");
  push @t_sessions, $s;
  wait_for("SELECT active + queued = @{[$i + 1]} FROM config_guard.role_stats WHERE role = 'svc_t'::regrole",
    "svc_t session $i in");
}
$node->safe_psql('postgres', q{BEGIN;
  SELECT config_guard.set_role_limit('svc_t', 10, 10, '60s');
  SELECT config_guard.set_role_limit('svc_t', 1, 10, '60s');
  COMMIT});
sleep(1);
is($node->safe_psql('postgres', q{SELECT active || '/' || queued FROM config_guard.role_stats WHERE role = 'svc_t'::regrole}),
   '1/3', 'a raise and a lower committed together admit nobody beyond the lower limit');
$node->safe_psql('postgres', q{BEGIN;
  SELECT config_guard.drop_role_limit('svc_t');
  SELECT config_guard.set_role_limit('svc_t', 1, 10, '60s');
  COMMIT});
sleep(1);
is($node->safe_psql('postgres', q{SELECT active || '/' || queued FROM config_guard.role_stats WHERE role = 'svc_t'::regrole}),
   '1/3', 'a drop and a set committed together: the same');
my $t0 = time;
$node->safe_psql('postgres', q{SELECT config_guard.set_role_limit('svc_t', 1, 10, '1s')});
wait_for(q{SELECT queued = 0 AND wait_timeouts = 3 FROM config_guard.role_stats WHERE role = 'svc_t'::regrole},
  'the queued statements time out');
cmp_ok(time - $t0, '<', 30, 'a shorter queue timeout reaches statements already queued (55P03 within seconds, not 60 s)');
$admin->query_safe('SELECT pg_advisory_unlock(20)');
wait_for(q{SELECT active = 0 AND queued = 0 FROM config_guard.role_stats WHERE role = 'svc_t'::regrole},
  'svc_t idle');
$_->quit for @t_sessions;
$node->safe_psql('postgres', q{SELECT config_guard.drop_role_limit('svc_t')});

# a crash: kill -9 of a backend holding a slot; shared memory is reset and the
# limits come back from their file
$admin->query_safe('SELECT pg_advisory_lock(5)');
my $victim = hold(5, 'victim');
wait_for(q{SELECT active = 1 FROM config_guard.role_stats WHERE role = 'svc'::regrole}, 'victim running');
my $victim_pid = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE usename = 'svc' AND query LIKE '%victim%'});
kill 'KILL', $victim_pid;
eval { $victim->quit };
eval { $admin->quit };
$node->poll_query_until('postgres', 'SELECT 1', '1') or die 'no recovery';
is($node->safe_psql('postgres', q{SELECT max_active || '/' || active FROM config_guard.role_stats WHERE role = 'svc'::regrole}),
  '3/0', 'after a crash: the limit is in force and no slot is held');

$node->restart;
is($node->safe_psql('postgres', q{SELECT max_active || '/' || max_queued || '/' || queue_timeout FROM config_guard.role_stats}),
  '3/2/00:00:03', 'after a restart the limit is in force without anyone calling anything');
($ret, $out, $err) = $node->psql('postgres', 'SELECT 42', extra_params => [ '-U', 'svc' ]);
is($out, '42', 'the limited role works');
is($node->safe_psql('postgres', q{SELECT admitted FROM config_guard.role_stats}), '1', 'and is counted');

$node->safe_psql('postgres', q{SELECT config_guard.drop_role_limit('svc')});
$node->restart;
is($node->safe_psql('postgres', q{SELECT count(*) FROM config_guard.role_stats}), '0', 'a dropped limit stays dropped');
$node->stop;
done_testing();

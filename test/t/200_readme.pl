# The README's Getting started runs as written: every `sql` block of the
# section, in order, on a fresh database with the extension. A statement
# followed by a `-- => <answer>` comment must answer exactly that; a
# `-- NOTICE:  ...` comment must be among the notices of the statement before.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use ConfigGuard::Test;

my $readme = slurp_file("$FindBin::Bin/../../README.md");
my ($section) = $readme =~ /^## Getting started\n(.*?)^## /ms;
ok(defined $section, 'the README has a Getting started section');
my @blocks = $section =~ /^```sql\n(.*?)^```/msg;
cmp_ok(scalar @blocks, '>=', 2, scalar(@blocks) . ' sql blocks');

# Statements end with a semicolon at the end of a line, outside dollar quotes.
my @steps;    # [statement, [expected answers], [expected notices]]
for my $block (@blocks) {
  my ($statement, $dollars) = ('', 0);
  for my $line (split /\n/, $block) {
    if ($statement eq '' && $line =~ /^-- NOTICE:  (.*)$/) {
      push @{ $steps[-1][2] }, $1;
      next;
    }
    if ($statement eq '' && $line =~ /^-- => (.+)$/) {
      push @{ $steps[-1][1] }, $1;
      next;
    }
    next if $statement eq '' && $line =~ /^--/;
    $statement .= "$line\n";
    my $count = () = $line =~ /\$\$/g;
    $dollars += $count;
    if ($dollars % 2 == 0 && $line =~ /;\s*$/) {
      push @steps, [ $statement, [], [] ];
      $statement = '';
    }
  }
}

my $node = preloaded_node('readme');
$node->safe_psql('postgres', 'CREATE EXTENSION config_guard');
my $answers = 0;
for my $step (@steps) {
  my ($sql, $expected, $notices) = @$step;
  my ($rc, $out, $err) = $node->psql('postgres', $sql);
  my $first = (split /\n/, $sql)[0];
  is($rc, 0, "runs: $first") or diag($err);
  if (@$expected) {
    is($out, join("\n", @$expected), "answers as shown: $first");
    ++$answers;
  }
  like($err, qr/\Q$_\E/, "says: $_") for @$notices;
}
cmp_ok($answers, '>=', 4, "$answers answers checked");
unlike(slurp_file($node->logfile), qr/terminated by signal|TRAP:|PANIC/, 'no crash in the server log');
$node->stop;
done_testing();

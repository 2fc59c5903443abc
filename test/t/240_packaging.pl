# What packaging reads agrees with the extension itself: the PGXN META.json
# names the control file's version (as major.minor.0) in both places, and
# every version the control file can reach has an update path from 0.1.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use FindBin;

my $root = "$FindBin::Bin/../..";
my ($version) = slurp_file("$root/config_guard.control") =~ /^default_version = '([^']+)'/m;
ok(defined $version, "the control file's version: $version");
my $meta = JSON::PP->new->decode(slurp_file("$root/META.json"));
is($meta->{version}, "$version.0", 'META.json version');
is($meta->{provides}{config_guard}{version}, "$version.0", 'META.json provides the same version');
ok(-f "$root/$meta->{provides}{config_guard}{file}", 'the file META.json names exists');
is($meta->{'meta-spec'}{version}, '1.0.0', 'PGXN meta-spec 1.0.0');
# 0.1 -> 0.2 -> ... -> the control file's version, one script per step
my %step = map { /config_guard--([\d.]+)--([\d.]+)\.sql$/ ? ($1 => $2) : () } glob("$root/config_guard--*--*.sql");
my ($at, $hops) = ('0.1', 0);
$at = $step{$at}, ++$hops while exists $step{$at} && $hops < 100;
is($at, $version, "update scripts lead from 0.1 to $version in $hops steps");
done_testing();

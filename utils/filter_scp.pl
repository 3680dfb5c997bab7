#!/usr/bin/env perl
# Keep (or with --exclude, drop) the lines of a table whose key is in an id list.
#
#   utils/filter_scp.pl [--exclude] [-f <N>] <id-list> [<in.scp>] > <out.scp>
#
# The keys are the first field of each non-empty line of <id-list>. A line of <in.scp>
# (stdin when not given) is printed, unchanged and in input order, when its field N
# (default 1; fields are separated by whitespace) is one of the keys; with --exclude,
# when it is not. Exit status: 1 if a file cannot be read or a line has fewer than N
# fields; 2 on a usage error.
use strict;
use warnings;

my $usage = <<'EOF_USAGE';
Usage: utils/filter_scp.pl [--exclude] [-f <N>] <id-list> [<in.scp>] > <out.scp>
Prints the lines of <in.scp> (or stdin) whose field N (default 1) is in the first
column of <id-list>; with --exclude, the lines whose field N is not.
EOF_USAGE

sub usage_error {
  my ($msg) = @_;
  print STDERR "filter_scp.pl: $msg\n" if defined $msg;
  print STDERR $usage;
  exit 2;
}

my $exclude = 0;
my $field = 1;
while (@ARGV && $ARGV[0] =~ m/^-./) {
  my $opt = shift @ARGV;
  if ($opt eq '--exclude') {
    $exclude = 1;
  } elsif ($opt eq '-f') {
    usage_error("-f needs a field number") unless @ARGV;
    $field = shift @ARGV;
    usage_error("-f takes a field number >= 1, got '$field'") unless $field =~ m/^[1-9][0-9]*$/;
  } elsif ($opt eq '--help' || $opt eq '-h') {
    print $usage;
    exit 0;
  } else {
    usage_error("unknown option $opt");
  }
}
usage_error() unless @ARGV == 1 || @ARGV == 2;
my ($id_list, $in) = @ARGV;

my %keep;
sub fail {
  print STDERR "filter_scp.pl: $_[0]\n";
  exit 1;
}

open(my $ids, '<', $id_list) or fail("cannot read $id_list: $!");
while (my $line = <$ids>) {
  my ($id) = split(' ', $line);
  $keep{$id} = 1 if defined $id;
}
close($ids);

my $fh = \*STDIN;
my $name = 'stdin';
if (defined $in && $in ne '-') {
  open($fh, '<', $in) or fail("cannot read $in: $!");
  $name = $in;
}
while (my $line = <$fh>) {
  my @fields = split(' ', $line);
  if (@fields < $field) {
    chomp $line;
    fail("$name:$.: no field $field in line '$line'");
  }
  print $line if ($keep{ $fields[ $field - 1 ] } ? 1 : 0) != $exclude;
}
exit 0;

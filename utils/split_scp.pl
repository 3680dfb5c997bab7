#!/usr/bin/env perl
# Split the lines of a Kaldi table (wav.scp, utt2spk, ...) into N contiguous parts.
#
#   utils/split_scp.pl [--utt2spk=<utt2spk>] <in.scp> <out.1.scp> ... <out.N.scp>
#   utils/split_scp.pl [--utt2spk=<utt2spk>] -j <N> <k> <in.scp>   (part k, 0-based,
#                                                                   to stdout)
#
# Without --utt2spk the parts hold floor(L/N) or floor(L/N)+1 lines (the longer ones
# first) and their concatenation is the input. With --utt2spk every speaker's lines go
# to the same part: speakers (in order of first appearance) are first dealt out in
# contiguous runs of nearly equal speaker counts, then a speaker at the edge of a part
# moves to the neighbouring part while that brings the two parts' line counts closer.
# Each part lists its speakers' lines grouped by speaker, in input order.
#
# Exit status: 1 if there are fewer lines (or speakers) than parts, a line's utterance
# has no speaker, or a file cannot be read or written; 2 on a usage error.
use strict;
use warnings;

my $usage = <<'EOF';
Usage: utils/split_scp.pl [--utt2spk=<utt2spk>] <in.scp> <out.1.scp> ... <out.N.scp>
   or: utils/split_scp.pl [--utt2spk=<utt2spk>] -j <N> <k> <in.scp>  (part k of N, k from 0)
Splits the lines into N contiguous, nearly equal parts (never more parts than lines).
  --utt2spk=FILE   keep all utterances of a speaker in the same part
EOF

sub usage_error {
  my ($msg) = @_;
  print STDERR "split_scp.pl: $msg\n" if defined $msg;
  print STDERR $usage;
  exit 2;
}

sub fail {
  print STDERR "split_scp.pl: $_[0]\n";
  exit 1;
}

my ($utt2spk_file, $num_jobs, $job_id);
while (@ARGV && $ARGV[0] =~ m/^-/) {
  my $opt = shift @ARGV;
  if ($opt =~ m/^--utt2spk=(.+)$/) {
    $utt2spk_file = $1;
  } elsif ($opt eq '--utt2spk') {
    usage_error("--utt2spk needs a file") unless @ARGV;
    $utt2spk_file = shift @ARGV;
  } elsif ($opt eq '-j') {
    usage_error("-j needs <N> <k>") unless @ARGV >= 2;
    ($num_jobs, $job_id) = splice(@ARGV, 0, 2);
    usage_error("-j $num_jobs $job_id: need N >= 1 and 0 <= k < N")
      unless $num_jobs =~ m/^[1-9][0-9]*$/ && $job_id =~ m/^[0-9]+$/ && $job_id < $num_jobs;
  } elsif ($opt eq '--help' || $opt eq '-h') {
    print $usage;
    exit 0;
  } else {
    usage_error("unknown option $opt");
  }
}

my ($in, @outputs);
if (defined $num_jobs) {
  usage_error("-j takes exactly one input file") unless @ARGV == 1;
  $in = $ARGV[0];
} else {
  usage_error() unless @ARGV >= 2;
  ($in, @outputs) = @ARGV;
}
my $num_parts = defined $num_jobs ? $num_jobs : scalar(@outputs);

open(my $in_fh, '<', $in) or fail("cannot read $in: $!");
my @lines = <$in_fh>;
close($in_fh);
$_ .= "\n" for grep { !m/\n$/ } @lines;
my $num_lines = scalar(@lines);

# Groups of lines that must stay together: one per line, or one per speaker.
my @groups;
if (defined $utt2spk_file) {
  my %utt2spk;
  open(my $fh, '<', $utt2spk_file) or fail("cannot read $utt2spk_file: $!");
  while (my $line = <$fh>) {
    my @fields = split(' ', $line);
    next unless @fields;
    fail("$utt2spk_file:$.: expected '<utt> <spk>', got: $line") unless @fields == 2;
    $utt2spk{$fields[0]} = $fields[1];
  }
  close($fh);
  my %group_of;
  for my $i (0 .. $#lines) {
    my ($utt) = split(' ', $lines[$i]);
    fail("$in:" . ($i + 1) . ": empty line") unless defined $utt;
    my $spk = $utt2spk{$utt};
    fail("$in:" . ($i + 1) . ": utterance $utt is not in $utt2spk_file") unless defined $spk;
    if (!exists $group_of{$spk}) {
      $group_of{$spk} = scalar(@groups);
      push @groups, [];
    }
    push @{ $groups[ $group_of{$spk} ] }, $lines[$i];
  }
  if (@groups < $num_parts) {
    my $num_spk = scalar(@groups);
    fail("cannot split $in into $num_parts parts: it has only $num_spk speakers "
      . "($num_lines lines); use at most $num_spk parts");
  }
} else {
  @groups = map { [$_] } @lines;
  if ($num_lines < $num_parts) {
    fail("cannot split $in into $num_parts parts: it has only $num_lines lines; "
      . "use at most $num_lines parts");
  }
}

# parts[p] = [first group, last group] (inclusive); sizes[p] = its number of lines.
my @parts;
my $num_groups = scalar(@groups);
if (!defined $utt2spk_file) {
  my $base = int($num_groups / $num_parts);
  my $extra = $num_groups % $num_parts;
  my $start = 0;
  for my $p (0 .. $num_parts - 1) {
    my $n = $base + ($p < $extra ? 1 : 0);
    push @parts, [ $start, $start + $n - 1 ];
    $start += $n;
  }
} else {
  # Speaker s starts in part floor(s * N / S): part p begins at speaker ceil(p * S / N).
  my $begin = sub { int(($_[0] * $num_groups + $num_parts - 1) / $num_parts) };
  push @parts, [ $begin->($_), $begin->($_ + 1) - 1 ] for 0 .. $num_parts - 1;
  my @size = map { scalar @$_ } @groups;
  my $lines_in = sub {
    my ($p) = @_;
    my $n = 0;
    $n += $size[$_] for $parts[$p][0] .. $parts[$p][1];
    return $n;
  };
  # Move a boundary speaker between neighbours while that narrows their difference in
  # line counts; each move lowers the sum of squared part sizes, so this terminates.
  my $moved = 1;
  while ($moved) {
    $moved = 0;
    for my $p (0 .. $num_parts - 2) {
      my ($na, $nb) = ($lines_in->($p), $lines_in->($p + 1));
      my $last = $size[ $parts[$p][1] ];
      my $first = $size[ $parts[ $p + 1 ][0] ];
      if ($parts[$p][1] > $parts[$p][0] && abs(($na - $last) - ($nb + $last)) < abs($na - $nb)) {
        $parts[$p][1]--;
        $parts[ $p + 1 ][0]--;
        $moved = 1;
      } elsif ($parts[ $p + 1 ][1] > $parts[ $p + 1 ][0]
        && abs(($na + $first) - ($nb - $first)) < abs($na - $nb)) {
        $parts[$p][1]++;
        $parts[ $p + 1 ][0]++;
        $moved = 1;
      }
    }
  }
}

sub write_part {
  my ($fh, $p) = @_;
  print $fh @{ $groups[$_] } for $parts[$p][0] .. $parts[$p][1];
}

if (defined $num_jobs) {
  write_part(\*STDOUT, $job_id);
} else {
  for my $p (0 .. $num_parts - 1) {
    open(my $fh, '>', $outputs[$p]) or fail("cannot write $outputs[$p]: $!");
    write_part($fh, $p);
    close($fh) or fail("cannot write $outputs[$p]: $!");
  }
}
exit 0;

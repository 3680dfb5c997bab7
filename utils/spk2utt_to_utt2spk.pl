#!/usr/bin/env perl
# Convert spk2utt ("<spk> <utt1> <utt2> ..." lines) to utt2spk ("<utt> <spk>" lines).
#
#   utils/spk2utt_to_utt2spk.pl [<spk2utt> ...] > <utt2spk>
#
# Reads the files named (or stdin) and prints one line per utterance, in input order.
# Exit status: 1 on a line with no utterance (the message names file and line), 2 on a
# usage error.
use strict;
use warnings;

if (@ARGV && $ARGV[0] =~ m/^-./) {
  my $help = $ARGV[0] eq '--help' || $ARGV[0] eq '-h';
  print { $help ? \*STDOUT : \*STDERR }
    "Usage: utils/spk2utt_to_utt2spk.pl [<spk2utt> ...] > <utt2spk>\n";
  exit($help ? 0 : 2);
}

while (my $line = <<>>) {
  my ($spk, @utts) = split(' ', $line);
  if (!@utts) {
    chomp $line;
    print STDERR "spk2utt_to_utt2spk.pl: $ARGV:$.: expected '<spk> <utt1> ...', got '$line'\n";
    exit 1;
  }
  print "$_ $spk\n" for @utts;
} continue {
  close ARGV if eof;    # restart $. for each file
}
exit 0;

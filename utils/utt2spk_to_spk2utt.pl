#!/usr/bin/env perl
# Convert utt2spk ("<utt> <spk>" lines) to spk2utt ("<spk> <utt1> <utt2> ..." lines).
#
#   utils/utt2spk_to_spk2utt.pl [<utt2spk> ...] > <spk2utt>
#
# Reads the files named (or stdin). Speakers are listed in order of first appearance
# and each speaker's utterances in input order, so a sorted utt2spk whose speaker ids
# prefix its utterance ids gives a sorted spk2utt. Exit status: 1 on a line that is not
# "<utt> <spk>" (the message names file and line), 2 on a usage error.
use strict;
use warnings;

if (@ARGV && $ARGV[0] =~ m/^-./) {
  my $help = $ARGV[0] eq '--help' || $ARGV[0] eq '-h';
  print { $help ? \*STDOUT : \*STDERR }
    "Usage: utils/utt2spk_to_spk2utt.pl [<utt2spk> ...] > <spk2utt>\n";
  exit($help ? 0 : 2);
}

my @speakers;
my %utts_of;
while (my $line = <<>>) {
  my @fields = split(' ', $line);
  if (@fields != 2) {
    chomp $line;
    print STDERR "utt2spk_to_spk2utt.pl: $ARGV:$.: expected '<utt> <spk>', got '$line'\n";
    exit 1;
  }
  my ($utt, $spk) = @fields;
  push @speakers, $spk unless exists $utts_of{$spk};
  push @{ $utts_of{$spk} }, $utt;
} continue {
  close ARGV if eof;    # restart $. for each file
}
print join(' ', $_, @{ $utts_of{$_} }), "\n" for @speakers;
exit 0;

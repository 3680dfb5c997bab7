#!/usr/bin/env perl
# Run a command locally as an array of jobs, Kaldi's run.pl interface:
#
#   utils/run.pl [options] [VAR=start:end | VAR=n] <log-file> <command> [<arg> ...]
#
# Every occurrence of VAR (any name, usually JOB) in the log file name and in each
# argument is replaced by the job index. Each job runs "bash -c <command line>" with
# stdin from /dev/null and stdout+stderr into its log, which begins with "# <command>"
# and "# Started at <date>" and ends with "# Accounting: time=<s> threads=<n>" and
# "# Ended (code <status>) at <date>". The log's folder is created.
#
# The command line given to bash: an argument without whitespace or quote characters
# is passed as it is, so '|', '>' and 2>&1 keep their shell meaning (Kaldi convention);
# any other argument is single-quoted and reaches the command unchanged.
#
# Options (before the job range):
#   --max-jobs-run N   at most N jobs at a time (default: the number of CPUs this
#                      process may use, as "nproc" reports; 1 if that fails)
#   --num-threads N    only reported in the Accounting line (default 1)
#   --append-log true  add to an existing log instead of starting it afresh (a resumed
#                      training run keeps the log of its first part; default false)
#   --config, --mem, --gpu, --time and any other --name value (or --name=value):
#                      accepted and ignored; they matter to cluster launchers only.
#
# Exit status: 0 if every job succeeded; 1 if any failed (stderr then says
# "run.pl: <k> / <N> failed, log is in <logs>" followed by the last lines of the first
# failed job's log, so that the error reaches the console); 2 on a usage error;
# 128+signal if interrupted (the running jobs are sent the same signal).
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Path qw(make_path);
use POSIX qw(strftime);

my $usage = <<'EOF';
Usage: utils/run.pl [options] [JOB=1:N | JOB=n] <log-file> <command> [<arg> ...]
  e.g. utils/run.pl --max-jobs-run 4 JOB=1:8 exp/log/dump.JOB.log \
         python3 -m codectk.bin.dump --scp data/split8/JOB/wav.scp
Options:
  --max-jobs-run N   run at most N jobs at a time (default: number of CPUs)
  --num-threads N    threads per job, shown in each log's Accounting line (default 1)
  --append-log BOOL  add to existing logs instead of truncating them (default false)
  --config/--mem/--gpu/--time X and other --name X: accepted and ignored
Exit status: 0 all jobs succeeded, 1 some job failed (the first failed log's last
lines are printed), 2 usage error.
EOF

sub usage_error {
  my ($msg) = @_;
  print STDERR "run.pl: $msg\n" if defined $msg;
  print STDERR $usage;
  exit 2;
}

my $max_jobs_run;
my $num_threads = 1;
my $append_log = 0;
my $tail_lines = 20;    # lines of the first failed log shown on stderr

while (@ARGV && $ARGV[0] =~ m/^--/) {
  my $opt = shift @ARGV;
  my $value;
  if ($opt =~ m/^(--[^=]+)=(.*)$/s) {
    ($opt, $value) = ($1, $2);
  } elsif ($opt eq '--help') {
    print $usage;
    exit 0;
  } else {
    usage_error("option $opt needs a value") unless @ARGV;
    $value = shift @ARGV;
  }
  (my $name = $opt) =~ s/^--//;
  $name =~ tr/-/_/;
  if ($name eq 'max_jobs_run') {
    usage_error("--max-jobs-run takes a positive integer, got '$value'")
      unless $value =~ m/^[1-9][0-9]*$/;
    $max_jobs_run = $value;
  } elsif ($name eq 'num_threads') {
    usage_error("--num-threads takes a positive integer, got '$value'")
      unless $value =~ m/^[1-9][0-9]*$/;
    $num_threads = $value;
  } elsif ($name eq 'append_log') {
    usage_error("--append-log takes true or false, got '$value'")
      unless $value =~ m/^(true|false)$/;
    $append_log = $value eq 'true';
  }
  # Anything else (--config, --mem, --gpu, --time, ...) is for cluster launchers.
}

usage_error() if @ARGV < 2;

my ($var, $first, $last) = (undef, 1, 1);
if ($ARGV[0] =~ m/^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+)(?::([0-9]+))?$/) {
  ($var, $first, $last) = ($1, $2, defined $3 ? $3 : $2);
  shift @ARGV;
  usage_error("bad job range $var=$first:$last (end before start)") if $last < $first;
  usage_error() if @ARGV < 2;
}
my $num_jobs = $last - $first + 1;
my ($log_pattern, @cmd_pattern) = @ARGV;

if ($num_jobs > 1 && index($log_pattern, $var) < 0) {
  usage_error("$num_jobs jobs would share one log file '$log_pattern'; put $var in its name");
}

if (!defined $max_jobs_run) {
  my $nproc = `nproc 2>/dev/null`;
  $max_jobs_run = (defined $nproc && $nproc =~ m/^\s*([1-9][0-9]*)\s*$/) ? $1 : 1;
}

sub substitute {
  my ($text, $id) = @_;
  $text =~ s/\Q$var\E/$id/g if defined $var;
  return $text;
}

sub shell_word {
  my ($arg) = @_;
  return $arg if $arg ne '' && $arg !~ m/[\s'"\\`]/;
  (my $quoted = $arg) =~ s/'/'\\''/g;
  return "'$quoted'";
}

sub now { return strftime('%a %b %e %H:%M:%S %Z %Y', localtime) }

# Runs in a forked child: writes the log around one job and exits with its status.
sub run_job {
  my ($id) = @_;
  my $log = substitute($log_pattern, $id);
  my $cmd = join(' ', map { shell_word(substitute($_, $id)) } @cmd_pattern);
  my $fail = sub { print STDERR "run.pl: $_[0]\n"; POSIX::_exit(1) };
  my $dir = dirname($log);
  eval { make_path($dir) unless -d $dir; 1 } or $fail->("cannot create folder $dir: $@");
  open(my $fh, $append_log ? '>>' : '>', $log) or $fail->("cannot write $log: $!");
  print $fh "# $cmd\n# Started at " . now() . "\n";
  close($fh) or $fail->("cannot write $log: $!");
  my $start = time();
  # Signals reaching this process group also reach the job; stay alive to log its end.
  local $SIG{INT} = sub { };
  local $SIG{TERM} = sub { };
  my $pid = fork();
  $fail->("cannot fork: $!") unless defined $pid;
  if ($pid == 0) {
    open(STDIN, '<', '/dev/null') or POSIX::_exit(127);
    open(STDOUT, '>>', $log) or POSIX::_exit(127);
    open(STDERR, '>&', \*STDOUT) or POSIX::_exit(127);
    exec('bash', '-c', $cmd) or print STDERR "run.pl: cannot run bash: $!\n";
    POSIX::_exit(127);
  }
  my $got;
  do { $got = waitpid($pid, 0) } until $got == $pid;
  my $status = $?;
  my $code = ($status & 127) ? 128 + ($status & 127) : $status >> 8;
  my $elapsed = time() - $start;
  open($fh, '>>', $log) or $fail->("cannot write $log: $!");
  print $fh "# Accounting: time=$elapsed threads=$num_threads\n";
  print $fh "# Ended (code $code) at " . now() . "\n";
  close($fh) or $fail->("cannot write $log: $!");
  POSIX::_exit($code > 255 ? 255 : $code);
}

my %running;    # pid -> job index
my @failed;

sub stop_jobs {
  my ($sig) = @_;
  kill($sig, -$_) || kill($sig, $_) for keys %running;
  my %num = (INT => 2, TERM => 15, HUP => 1);
  exit(128 + $num{$sig});
}
$SIG{$_} = \&stop_jobs for qw(INT TERM HUP);

my $next = $first;
while ($next <= $last || %running) {
  while ($next <= $last && keys(%running) < $max_jobs_run) {
    my $pid = fork();
    die "run.pl: cannot fork: $!\n" unless defined $pid;
    if ($pid == 0) {
      POSIX::setpgid(0, 0);
      $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
      run_job($next);
    }
    POSIX::setpgid($pid, $pid);    # also here, so a signal cannot beat the child to it
    $running{$pid} = $next++;
  }
  my $pid = waitpid(-1, 0);
  next if $pid <= 0 || !exists $running{$pid};
  my $id = delete $running{$pid};
  push @failed, $id if $? != 0;
}

# The last lines of a job's log before run.pl's own "# Accounting" / "# Ended" lines.
sub log_tail {
  my ($log) = @_;
  open(my $fh, '<', $log) or return ();
  my @lines = <$fh>;
  close($fh);
  pop @lines while @lines && $lines[-1] =~ m/^# (Accounting: |Ended \(code )/;
  my $from = @lines > $tail_lines ? @lines - $tail_lines : 0;
  return @lines[$from .. $#lines];
}

if (@failed) {
  my @logs = map { substitute($log_pattern, $_) } sort { $a <=> $b } @failed;
  print STDERR "run.pl: " . scalar(@failed) . " / $num_jobs failed, log is in @logs\n";
  my @tail = log_tail($logs[0]);
  if (@tail) {
    print STDERR "run.pl: the last lines of $logs[0]:\n";
    print STDERR map { (m/\n\z/ ? "  $_" : "  $_\n") } @tail;
  }
  exit 1;
}
exit 0;

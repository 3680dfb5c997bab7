#!/usr/bin/env perl
# Run a command as a SLURM job array, with run.pl's interface (Kaldi's slurm.pl convention):
#
#   utils/slurm.pl [options] [VAR=start:end | VAR=n] <log-file> <command> [<arg> ...]
#
# Each job index becomes one task of a single "sbatch --array start-end" job; VAR (any
# name, usually JOB) is replaced by the index in the log file name and in each argument,
# and each task runs "bash -c <command line>" (quoted as run.pl does) in the current
# folder, stdin from /dev/null, stdout+stderr into its log. Logs look like run.pl's:
# "# <command>", "# Started at <date>", the output, "# Accounting: time=<s> threads=<n>",
# "# Ended (code <status>) at <date>". A task SLURM ends before it can write the last two
# lines (killed for memory, time limit, cancelled) gets them appended by slurm.pl, after a
# "# slurm.pl: ..." line saying why. slurm.pl waits for the whole array by polling
# "scontrol show job" (every 0.5 s at first, backing off to 10 s), and "sacct" if the
# controller has already forgotten the job (retrying for a few minutes when neither
# answers). Not "sbatch --wait": it gives only the highest exit code of the array, not
# which task failed or why (OUT_OF_MEMORY, TIMEOUT), and on a local cluster it returned
# 10 s after a 0.2 s job. The batch script and SLURM's own output of each task
# (slurmstepd messages) are kept in <log-dir>/q/. A task pending for a reason that may
# never clear (e.g. PartitionNodeLimit) is reported once on stderr.
#
# Options (before the job range; --name value or --name=value, '-' and '_' alike):
#   --config FILE      option -> sbatch flag rules [conf/slurm.conf; if absent, the
#                      repository's conf/slurm.conf next to this script's utils/ folder]
#   --max-jobs-run N   at most N tasks at a time (sbatch --array start-end%N)
#   --append-log true  add to existing logs instead of starting them afresh (default false)
#   --mem X, --gpu N, --num-threads N, --time T, --num-nodes M and any other --name X:
#                      mapped to sbatch flags by the config file's rules; a name the
#                      config does not describe is a usage error.
#
# Config file (Kaldi's format; '#' starts a comment):
#   command sbatch --export=ALL          the submit command and its fixed flags
#   option mem=* --mem $0                --mem X adds "--mem X" ($0 is the value)
#   option gpu=0                         --gpu 0 adds nothing (exact values win over *)
#   default gpu=0                        the value used when the option is not given
#
# Exit status: 0 if every task succeeded; 1 if any failed (stderr names each failed
# task, why, e.g. "killed for memory (--mem 2G)", and its log, then shows the last lines
# of the first failed log) or sbatch refused the job;
# 2 on a usage or config error; 128+signal if interrupted (the job is then scancel'ed).
use strict;
use warnings;
use Cwd qw(getcwd abs_path);
use File::Basename qw(dirname basename);
use File::Path qw(make_path);
use POSIX qw(strftime);

my $usage = <<'EOF';
Usage: utils/slurm.pl [options] [JOB=1:N | JOB=n] <log-file> <command> [<arg> ...]
  e.g. utils/slurm.pl --mem 4G --max-jobs-run 4 JOB=1:8 exp/log/dump.JOB.log \
         python3 -m codectk.bin.dump --scp data/split8/JOB/wav.scp
Options:
  --config FILE      option -> sbatch flag rules (default: conf/slurm.conf)
  --max-jobs-run N   run at most N tasks of the array at a time
  --append-log BOOL  add to existing logs instead of truncating them (default false)
  --mem X  --gpu N  --num-threads N  --time T  --num-nodes M  (and any option the
                     config file describes): mapped to sbatch flags by the config
Exit status: 0 all tasks succeeded, 1 some task failed, 2 usage or config error.
EOF

sub usage_error {
  my ($msg) = @_;
  print STDERR "slurm.pl: $msg\n" if defined $msg;
  print STDERR $usage;
  exit 2;
}

my %opts;    # option name (with '_') -> value, from the command line
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
  $opts{$name} = $value;
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

my $append_log = delete $opts{append_log} // 'false';
usage_error("--append-log takes true or false, got '$append_log'")
  unless $append_log =~ m/^(true|false)$/;
$append_log = $append_log eq 'true';
my $tail_lines = 20;    # lines of the first failed log shown on stderr
my $max_jobs_run = delete $opts{max_jobs_run};
if (defined $max_jobs_run && $max_jobs_run !~ m/^[1-9][0-9]*$/) {
  usage_error("--max-jobs-run takes a positive integer, got '$max_jobs_run'");
}
my $num_threads = exists $opts{num_threads} ? $opts{num_threads} : 1;
usage_error("--num-threads takes a positive integer, got '$num_threads'")
  unless $num_threads =~ m/^[1-9][0-9]*$/;

# The config: conf/slurm.conf here, else the repository's conf/ next to utils/.
my $config = delete $opts{config};
if (!defined $config) {
  $config = 'conf/slurm.conf';
  if (!-f $config) {
    my $self = abs_path($0);
    if (defined $self) {
      my $repo_conf = dirname(dirname($self)) . '/conf/slurm.conf';
      $config = $repo_conf if -f $repo_conf;
    }
  }
}

# Reads the config; returns the submit command (list) and the sbatch flags for %opts.
sub read_config {
  my ($file) = @_;
  open(my $fh, '<', $file) or usage_error("cannot read config $file: $!");
  my (@command, %exact, %star, %default);
  while (my $line = <$fh>) {
    chomp $line;
    (my $text = $line) =~ s/\s*#.*$//;
    $text =~ s/^\s+//;
    next if $text eq '';
    my $where = "$file line $.";
    if ($text =~ m/^command\s+(\S.*)$/) {
      @command = split(' ', $1);
    } elsif ($text =~ m/^option\s+([A-Za-z0-9_-]+)=\*\s+(\S.*)$/) {
      (my $name = $1) =~ tr/-/_/;
      my $flags = $2;
      usage_error("$where: '$line': a '=*' rule needs \$0 in its flags") if $flags !~ m/\$0/;
      $star{$name} = $flags;
    } elsif ($text =~ m/^option\s+([A-Za-z0-9_-]+)=(\S+)\s*(.*)$/) {
      (my $name = $1) =~ tr/-/_/;
      $exact{$name}{$2} = $3;
    } elsif ($text =~ m/^default\s+([A-Za-z0-9_-]+)=(\S+)\s*$/) {
      (my $name = $1) =~ tr/-/_/;
      $default{$name} = $2;
    } else {
      usage_error("$where: cannot parse '$line' (expected 'command ...', "
        . "'option NAME=VALUE [flags]', 'option NAME=* flags with \$0' or 'default NAME=VALUE')");
    }
  }
  close($fh);
  usage_error("$file has no 'command sbatch ...' line") unless @command;
  my %values = (%default, %opts);
  my @flags;
  for my $name (sort keys %values) {
    my $value = $values{$name};
    if (exists $exact{$name} && exists $exact{$name}{$value}) {
      push @flags, split(' ', $exact{$name}{$value});
    } elsif (exists $star{$name}) {
      (my $flags = $star{$name}) =~ s/\$0/$value/g;
      push @flags, split(' ', $flags);
    } elsif (exists $exact{$name} || exists $default{$name}) {
      my @allowed = sort keys %{ $exact{$name} || {} };
      usage_error("--$name $value is not allowed by $file (values: @allowed)");
    } else {
      usage_error("option --$name is not described in $file; add a line "
        . "'option $name=* <sbatch flags with \$0>'");
    }
  }
  return (\@command, \@flags);
}
my ($submit, $flags) = read_config($config);

sub substitute {
  my ($text, $id) = @_;
  $text =~ s/\Q$var\E/$id/g if defined $var;
  return $text;
}

# run.pl's rule: a word without whitespace or quotes keeps its shell meaning.
sub shell_word {
  my ($arg) = @_;
  return $arg if $arg ne '' && $arg !~ m/[\s'"\\`]/;
  return single_quote($arg);
}

sub single_quote {
  my ($text) = @_;
  (my $quoted = $text) =~ s/'/'\\''/g;
  return "'$quoted'";
}

sub now { return strftime('%a %b %e %H:%M:%S %Z %Y', localtime) }

my $cwd = getcwd();
my @ids = ($first .. $last);
my %log = map { $_ => substitute($log_pattern, $_) } @ids;
my %cmd = map {
  my $id = $_;
  $id => join(' ', map { shell_word(substitute($_, $id)) } @cmd_pattern)
} @ids;

# q/ folder beside the logs (above any folder named by the job variable).
my $log_dir = dirname($log_pattern);
if (defined $var) {
  my @parts = split(m{/}, $log_dir, -1);
  my $k = 0;
  $k++ while $k < @parts && index($parts[$k], $var) < 0;
  $log_dir = $k ? join('/', @parts[0 .. $k - 1]) : '.';
  $log_dir = '/' if $log_dir eq '' && $log_pattern =~ m{^/};
}
my $qdir = "$log_dir/q";
my $name = basename($log_pattern);
$name =~ s/\.?\Q$var\E//g if defined $var;
$name =~ s/\.log$//;
$name =~ s/[^A-Za-z0-9_.+-]/_/g;
$name = 'job' if $name eq '' || $name eq '.';
$qdir = "$cwd/$qdir" unless $qdir =~ m{^/};
my $script = "$qdir/$name.sh";
my $out_pattern = "$qdir/$name.%a.out";
sub out_file { my ($id) = @_; (my $f = $out_pattern) =~ s/%a/$id/; return $f }

for my $dir ($qdir, map { dirname($log{$_}) } @ids) {
  next if -d $dir;
  eval { make_path($dir); 1 } or do { print STDERR "slurm.pl: cannot create folder $dir: $@"; exit 1 };
}
for my $id (@ids) {    # no stale logs from a past run (unless they are to grow)
  unlink(out_file($id));
  unlink($log{$id}) unless $append_log;
}

my $array = "$first-$last" . (defined $max_jobs_run ? "%$max_jobs_run" : '');
my @sbatch = (@$submit, @$flags, '--parsable', '--job-name', $name, '--array', $array,
  '--output', $out_pattern, '--chdir', $cwd, $script);

# The batch script: picks its task's log and command by SLURM_ARRAY_TASK_ID, then
# writes the log as run.pl does.
my $redirect = $append_log ? '>>' : '>';
{
  my $text = "#!/bin/bash\n# Written by utils/slurm.pl; submitted as:\n# "
    . join(' ', map { shell_word($_) } @sbatch) . "\n"
    . "cd " . single_quote($cwd) . " || exit 1\n"
    . "case \"\${SLURM_ARRAY_TASK_ID:-}\" in\n";
  for my $id (@ids) {
    $text .= "$id) log=" . single_quote($log{$id}) . "\n   cmd=" . single_quote($cmd{$id}) . " ;;\n";
  }
  $text .= <<"EOF";
*) echo "slurm.pl: task '\${SLURM_ARRAY_TASK_ID:-}' is not in $first..$last" >&2; exit 1 ;;
esac
now() { date '+%a %b %e %H:%M:%S %Z %Y'; }
printf '# %s\\n# Started at %s\\n' "\$cmd" "\$(now)" $redirect "\$log" || exit 1
# scancel and time limits send SIGTERM to every process of the job: the command gets
# it too (a trapped signal is reset in children), this script stays to end the log.
trap 'echo "# slurm.pl: SIGTERM from SLURM" >> "\$log"' TERM
start=\$(date +%s)
bash -c "\$cmd" < /dev/null >> "\$log" 2>&1
code=\$?
printf '# Accounting: time=%d threads=$num_threads\\n# Ended (code %d) at %s\\n' \\
  "\$((\$(date +%s) - start))" "\$code" "\$(now)" >> "\$log"
exit "\$code"
EOF
  my $tmp = "$script.tmp.$$";
  open(my $fh, '>', $tmp) or do { print STDERR "slurm.pl: cannot write $tmp: $!\n"; exit 1 };
  print $fh $text;
  close($fh) or do { print STDERR "slurm.pl: cannot write $tmp: $!\n"; exit 1 };
  chmod(0755, $tmp);
  rename($tmp, $script) or do { print STDERR "slurm.pl: cannot write $script: $!\n"; exit 1 };
}

# Runs a command (list form, no shell); returns (exit status, stdout+stderr).
sub capture {
  my @command = @_;
  my $pid = open(my $fh, '-|');
  if (!defined $pid) { return (-1, "cannot fork: $!") }
  if ($pid == 0) {
    open(STDERR, '>&', \*STDOUT);
    open(STDIN, '<', '/dev/null');
    exec(@command) or print "cannot run $command[0]: $!\n";
    POSIX::_exit(127);
  }
  local $/;
  my $text = <$fh>;
  close($fh);
  return ($? >> 8, defined $text ? $text : '');
}

my ($status, $output) = capture(@sbatch);
my ($job) = $output =~ m/^([0-9]+)(?:;\S*)?\s*$/m;
if ($status != 0 || !defined $job) {
  $output =~ s/\s+$//;
  print STDERR "slurm.pl: sbatch refused the job (exit $status): $output\n"
    . "slurm.pl: command: " . join(' ', map { shell_word($_) } @sbatch) . "\n";
  exit 1;
}

sub cancel_job {
  my ($sig) = @_;
  capture('scancel', $job);
  my %num = (INT => 2, TERM => 15, HUP => 1);
  print STDERR "slurm.pl: got SIG$sig; cancelled SLURM job $job\n";
  exit(128 + $num{$sig});
}
$SIG{$_} = \&cancel_job for qw(INT TERM HUP);

my %terminal = map { $_ => 1 } qw(COMPLETED FAILED CANCELLED TIMEOUT OUT_OF_MEMORY
  NODE_FAIL PREEMPTED BOOT_FAIL DEADLINE);

# Task states from "scontrol show job": (1, {id => {state, exit, elapsed}}), or (0, error)
# when the controller no longer knows the job.
sub scontrol_states {
  my ($rc, $text) = capture('scontrol', '-o', 'show', 'job', $job);
  return (0, $text) if $rc != 0;
  my %tasks;
  for my $line (split(/\n/, $text)) {
    my %f = map { m/^([^=]+)=(.*)$/ ? ($1, $2) : () } split(' ', $line);
    next unless defined $f{JobState};
    my $ids = defined $f{ArrayTaskId} ? $f{ArrayTaskId} : $first;
    $ids =~ s/%.*$//;
    for my $range (split(/,/, $ids)) {
      my ($a, $b) = $range =~ m/^([0-9]+)(?:-([0-9]+))?/ or next;
      for my $id ($a .. (defined $b ? $b : $a)) {
        $tasks{$id} = { state => $f{JobState}, exit => $f{ExitCode} || '0:0',
          elapsed => $f{RunTime} || '0', reason => $f{Reason} || 'None' };
      }
    }
  }
  return (1, \%tasks);
}

sub sacct_states {
  my ($rc, $text) = capture('sacct', '-n', '-P', '-X', '-j', $job, '-o',
    'JobID,State,ExitCode,Elapsed');
  return (0, $text) if $rc != 0;
  my %tasks;
  for my $line (split(/\n/, $text)) {
    my ($jid, $state, $exit, $elapsed) = split(/\|/, $line);
    next unless defined $elapsed && $jid =~ m/^[0-9]+_([0-9]+)$/;
    $state =~ s/\s.*$//;    # "CANCELLED by 0"
    $tasks{$1} = { state => $state, exit => $exit, elapsed => $elapsed };
  }
  return (scalar(%tasks) ? 1 : 0, "sacct knows no task of job $job");
}

sub seconds {
  my ($t) = @_;
  my ($d, $h, $m, $s) = $t =~ m/^(?:([0-9]+)-)?(?:([0-9]+):)?([0-9]+):([0-9]+)/ or return 0;
  return ((($d || 0) * 24 + ($h || 0)) * 60 + $m) * 60 + $s;
}

my $tasks;
my %warned;
my $failures = 0;
my $poll = 0.5;
while (1) {
  select(undef, undef, undef, $poll);
  $poll = $poll * 1.25 > 10 ? 10 : $poll * 1.25;
  my ($ok, $got) = scontrol_states();
  ($ok, $got) = sacct_states() if !$ok;
  if (!$ok) {
    # The controller may be restarting: keep asking for a few minutes.
    $got =~ s/\s+$//;
    if (++$failures >= 30) {
      print STDERR "slurm.pl: cannot get the state of SLURM job $job from scontrol or sacct "
        . "(asked $failures times): $got\n";
      exit 1;
    }
    print STDERR "slurm.pl: cannot get the state of SLURM job $job yet, retrying: $got\n"
      if $failures == 1;
    next;
  }
  $failures = 0;
  $tasks = $got;
  # Say once why tasks wait when the reason is a limit or a node problem: such a job
  # may never start (e.g. more nodes than the partition has).
  for my $t (values %$tasks) {
    my $reason = $t->{reason} || 'None';
    next if $t->{state} ne 'PENDING' || $warned{$reason}
      || $reason !~ m/Limit|Invalid|BadConstraints|PartitionConfig|ReqNodeNotAvail|Down|Drain/
      || $reason eq 'JobArrayTaskLimit';
    $warned{$reason} = 1;
    print STDERR "slurm.pl: SLURM job $job is pending with reason $reason; it may never start "
      . "(scontrol show job $job; scancel $job to give up)\n";
  }
  last unless grep { !exists $tasks->{$_} || !$terminal{ $tasks->{$_}{state} } } @ids;
}

# Why a task failed, from its state, exit code and SLURM's messages for it.
sub failure_reason {
  my ($id, $t) = @_;
  my ($code, $signal) = $t->{exit} =~ m/^([0-9]+):([0-9]+)$/ ? ($1, $2) : (0, 0);
  my $out = '';
  if (open(my $fh, '<', out_file($id))) { local $/; $out = <$fh> // ''; close($fh) }
  if ($t->{state} eq 'OUT_OF_MEMORY'
    || $out =~ m/exceeded (?:job )?memory limit|oom[-_ ]kill event/i) {
    my $mem = exists $opts{mem} ? "--mem $opts{mem}" : 'no --mem given: the partition default';
    return ('killed for memory (' . $mem . ')', 137);
  }
  if ($t->{state} eq 'TIMEOUT') {
    my $time = exists $opts{time} ? "--time $opts{time}" : 'no --time given: the partition limit';
    return ("killed at its time limit ($time)", 128 + 15);
  }
  return ("exit code $code", $code) if $t->{state} eq 'FAILED' && $code;
  return ("killed by signal $signal", 128 + $signal) if $signal;
  return ("ended in state $t->{state}", $code || 1);
}

my @failed;
for my $id (@ids) {
  my $t = $tasks->{$id};
  next if $t->{state} eq 'COMPLETED' && $t->{exit} =~ m/^0:0$/;
  my ($reason, $code) = failure_reason($id, $t);
  push @failed, [$id, $reason];
  # Complete a log the task could not finish itself.
  my $text = '';
  if (open(my $fh, '<', $log{$id})) { local $/; $text = <$fh> // ''; close($fh) }
  next if $text =~ m/^# Ended \(code [0-9]+\) at .*\n?\z/m;
  if (open(my $fh, '>>', $log{$id})) {
    print $fh "# $cmd{$id}\n" if $text eq '';
    print $fh "\n" if $text ne '' && $text !~ m/\n\z/;
    print $fh "# slurm.pl: SLURM job ${job}_$id ended in state $t->{state}: $reason"
      . " (SLURM's messages: " . out_file($id) . ")\n";
    print $fh "# Accounting: time=" . seconds($t->{elapsed}) . " threads=$num_threads\n";
    print $fh "# Ended (code $code) at " . now() . "\n";
    close($fh);
  }
}

if (@failed) {
  my @logs = map { $log{ $_->[0] } } @failed;
  print STDERR "slurm.pl: " . scalar(@failed) . " / $num_jobs failed (SLURM job $job), "
    . "log is in @logs\n";
  for my $f (@failed) {
    print STDERR "slurm.pl:   task $f->[0]: $f->[1], log is in $log{ $f->[0] }\n";
  }
  # The last lines of the first failed log, before the closing "# Accounting" / "# Ended".
  if (open(my $fh, '<', $logs[0])) {
    my @lines = <$fh>;
    close($fh);
    pop @lines while @lines && $lines[-1] =~ m/^# (Accounting: |Ended \(code )/;
    my $from = @lines > $tail_lines ? @lines - $tail_lines : 0;
    if (@lines) {
      print STDERR "slurm.pl: the last lines of $logs[0]:\n";
      print STDERR map { (m/\n\z/ ? "  $_" : "  $_\n") } @lines[$from .. $#lines];
    }
  }
  exit 1;
}
exit 0;

# shellcheck shell=bash
# How recipe jobs run (Kaldi's cmd.sh interface): "<cmd> JOB=1:N log/x.JOB.log command ...".
# cmd_backend=local: utils/run.pl runs the jobs on this machine (options such as --gpu
#   and --mem are accepted and ignored).
# cmd_backend=slurm: utils/slurm.pl submits each call as one SLURM job array and waits
#   for it; conf/slurm.conf maps --mem, --gpu, --num_threads, --time and --num_nodes to
#   sbatch flags (--max_jobs_run N: at most N tasks at a time). README: "Running on SLURM".
cmd_backend=local

if [ "${cmd_backend}" = local ]; then
    export train_cmd="utils/run.pl"
    export cuda_cmd="utils/run.pl"
    export decode_cmd="utils/run.pl"
elif [ "${cmd_backend}" = slurm ]; then
    # train_cmd: wav dump and statistics; cuda_cmd: training (codec.sh adds --gpu
    # <ngpu>); decode_cmd: decoding and scoring. Memory is per task.
    export train_cmd="utils/slurm.pl --mem 2G"
    export cuda_cmd="utils/slurm.pl --mem 16G"
    export decode_cmd="utils/slurm.pl --mem 4G"
else
    echo "cmd.sh: unknown cmd_backend=${cmd_backend}; supported: local, slurm" >&2
    return 1
fi

# shellcheck shell=bash
# How recipe jobs run (Kaldi's cmd.sh interface): "<cmd> JOB=1:N log/x.JOB.log command ...".
# run.pl runs the jobs on this machine (options such as --gpu and --mem are accepted
# and ignored). A SLURM backend (slurm.pl) is planned; see docs/recipes.md.
cmd_backend=local

if [ "${cmd_backend}" = local ]; then
    export train_cmd="utils/run.pl"
    export cuda_cmd="utils/run.pl"
    export decode_cmd="utils/run.pl"
else
    echo "cmd.sh: unknown cmd_backend=${cmd_backend}; supported: local" >&2
    return 1
fi

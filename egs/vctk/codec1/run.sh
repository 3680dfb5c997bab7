#!/usr/bin/env bash
# VCTK 0.92 (48 kHz, 110 English speakers, held-out test and validation speakers).
# Sets and sizes: README.md. run_24k.sh and run_16k.sh: the same at 24 and 16 kHz.
# ./run.sh                              stages 1-8, SoundStream paper size at 48 kHz
# ./run.sh --stage 1 --stop_stage 4     data only (downloads VCTK 0.92 if it is missing)
# ./run.sh --local_data_opts "--mic mic2"    the other microphone (default mic1)
set -euo pipefail

train_set=train
valid_set=valid
test_sets="test"
train_config=conf/soundstream_48k_12kbps.yaml

./codec.sh \
    --fs 48000 \
    --nj 16 \
    --inference_nj 8 \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --train_config "${train_config}" \
    "$@"

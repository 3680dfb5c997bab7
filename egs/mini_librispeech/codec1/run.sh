#!/usr/bin/env bash
# mini_librispeech: the bundled real-speech corpus (70 LibriSpeech speakers, 16 kHz).
# ./run.sh                     stages 1-8 with the tiny SoundStream on CPU
# ./run.sh --stage 5 --stop_stage 7 --train_args "--max_steps 50"
set -euo pipefail

train_set=train
valid_set=valid
test_sets="test"
train_config=conf/soundstream_16k_tiny.yaml

./codec.sh \
    --fs 16000 \
    --nj 2 \
    --inference_nj 2 \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --train_config "${train_config}" \
    "$@"

#!/usr/bin/env bash
# LibriSpeech (16 kHz read English audiobooks, OpenSLR 12). Sets and sizes: README.md.
# ./run.sh                              stages 1-8, SoundStream paper size at 16 kHz
# ./run.sh --stage 1 --stop_stage 4     data only (downloads the missing parts first)
# ./run.sh --train_config conf/soundstream_16k_tiny.yaml --train_args "--max_steps 200"
set -euo pipefail

train_set=train-clean-100      # or train-clean-360, train-other-500, train-clean-460, train-960
valid_set=dev-clean
test_sets="test-clean"         # any of dev-clean dev-other test-clean test-other
train_config=conf/soundstream_16k_4kbps.yaml

./codec.sh \
    --fs 16000 \
    --nj 16 \
    --inference_nj 8 \
    --local_data_opts "--sets ${train_set},${valid_set},${test_sets// /,}" \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --train_config "${train_config}" \
    "$@"

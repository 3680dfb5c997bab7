#!/usr/bin/env bash
# `make demo`: the whole recipe on the bundled real speech, then the same config
# untrained, scored on the same test speakers, to show that training learned.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS=0
config=conf/soundstream_16k_tiny.yaml

./run.sh --train_config "${config}" "$@"
./run.sh --train_config "${config}" --stage 5 --stop_stage 7 \
    --tag soundstream_16k_tiny_untrained --train_args "--max_steps 0"

echo
echo "=== scores on the test speakers (dump/raw/test), trained vs untrained ==="
tools_python=../../../tools/venv/bin/python
${tools_python} -m codectk.bin.compare_scores \
    exp/codec_soundstream_16k_tiny/scores/test exp/codec_soundstream_16k_tiny_untrained/scores/test \
    --names trained untrained --require_better mel_distance
echo
echo "demo finished in ${SECONDS} s. Outputs:"
echo "  data/ dump/                                data dirs and dumped audio (stages 1-4)"
echo "  exp/codec_soundstream_16k_tiny/            config.yaml, checkpoints, train.log, tensorboard/, images/"
echo "  exp/codec_soundstream_16k_tiny/decode_test decoded wav/ and codes.{ark,scp}"
echo "  exp/codec_soundstream_16k_tiny/scores/test per_utt.tsv, summary.{txt,json}"
echo "  exp/codec_soundstream_16k_tiny/packed/     the packed model (codectk.load_codec)"

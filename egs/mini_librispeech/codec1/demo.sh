#!/usr/bin/env bash
# `make demo`: the whole recipe on the bundled real speech with the demo codec
# (conf/esc_16k_6kbps_demo.yaml: ESC at 6 kbps, the most intelligible codec found within
# the demo's 10-minute budget on 2 CPU cores; docs/demo.md has the experiments). The same
# config untrained is scored on the same test speakers first, so that the trained
# model's stage-7 report (exp/codec_esc_16k_6kbps_demo/report/index.html) shows it next
# to the untrained one and to the classical anchors (Opus at the same 6 kbps, Codec 2 at
# 3.2 kbps), and the run fails unless training learned.
# Options go to the data and the trained model's ./run.sh calls (e.g. --nj 4).
set -euo pipefail
cd "$(dirname "$0")"
SECONDS=0
config=conf/esc_16k_6kbps_demo.yaml
tag=esc_16k_6kbps_demo
opus_kbps=6
anchors="opus codec2"
if ! command -v opusenc > /dev/null || ! command -v c2enc > /dev/null; then
    echo "demo.sh: opusenc or c2enc not found: the report has no anchors (bash tools/install_system_deps.sh installs them)" >&2
    anchors=""
fi

./run.sh --train_config "${config}" --stage 1 --stop_stage 4 "$@"
./run.sh --train_config "${config}" --stage 5 --stop_stage 7 --tag "${tag}_untrained" \
    --train_args "--max_steps 0"
./run.sh --train_config "${config}" --stage 5 --stop_stage 8 --tag "${tag}" \
    --anchors "${anchors}" --anchor_opts "--opus_kbps ${opus_kbps} --codec2_kbps 3.2" \
    --report_exps "exp/codec_${tag}_untrained" "$@"

score_dirs=("exp/codec_${tag}/scores/test" "exp/codec_${tag}_untrained/scores/test")
names=(trained untrained)
if [ -n "${anchors}" ]; then
    score_dirs+=("exp/anchors/opus_${opus_kbps}/scores/test")
    names+=("opus_${opus_kbps}kbps")
fi
echo
echo "=== scores on the test speakers (dump/raw/test): trained, untrained, Opus at the same bitrate ==="
tools_python=../../../tools/venv/bin/python
${tools_python} -m codectk.bin.compare_scores "${score_dirs[@]}" --names "${names[@]}" \
    --require_better mel_distance
echo
echo "demo finished in ${SECONDS} s. Listen: exp/codec_${tag}/report/index.html"
echo "Outputs:"
echo "  data/ dump/                  data dirs and dumped audio (stages 1-4)"
echo "  exp/codec_${tag}/            config.yaml, checkpoints, train.log, tensorboard/, images/"
echo "  exp/codec_${tag}/decode_test decoded wav/ and codes.{ark,scp}"
echo "  exp/codec_${tag}/scores/test per_utt.tsv, summary.{txt,json}"
echo "  exp/codec_${tag}/report/     index.html: trained, untrained and anchors; mushra.html"
echo "  exp/codec_${tag}/packed/     the packed model (codectk.load_codec)"
echo "  exp/anchors/                 Opus and Codec 2 decoded and scored (decode_test/, scores/test/)"

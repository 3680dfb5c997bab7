#!/usr/bin/env bash
# AudioDec at paper size on VCTK 48 kHz: symAD (200k metric-only steps, then 500k with
# discriminators and the analyser frozen; 12.8 kbps), code statistics, AD v1 vocoder
# (500k steps) on the symAD codes, decoded and scored, then streamed in 12.5 ms chunks.
# Steps: egs/TEMPLATE/codec1/audiodec.sh.
# ./run_audiodec.sh --run_opts "--ngpu 1"
# ./run_audiodec.sh --vocoder_config conf/AudioDec_v0_symAD_vctk_48000_hop300_clean.yaml --stage 4
# ./run_audiodec.sh --denoise true --noise_scp /path/to/noise/wav.scp --stage 6
set -euo pipefail

./audiodec.sh \
    --symad_config conf/symAD_vctk_48000_hop300.yaml \
    --vocoder_config conf/AudioDec_v1_symAD_vctk_48000_hop300_clean.yaml \
    --denoise_config conf/symAD_vctk_48000_hop300_denoise.yaml \
    --test_set test \
    "$@"

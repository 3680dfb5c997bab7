#!/usr/bin/env bash
# AudioDec at toy size on the bundled corpus (16 kHz): tiny symAD (two phases), code
# statistics, tiny AD v1 vocoder on its codes, decoded and scored, then streamed in
# 12.5 ms chunks. Steps: egs/TEMPLATE/codec1/audiodec.sh; each later phase's config names
# the symAD experiment (init_from: ${exp:symAD_16k_tiny}).
# ./run_audiodec.sh                                    everything
# ./run_audiodec.sh --stage 4 --vocoder_args "--max_steps 800"   retrain the vocoder only
# ./run_audiodec.sh --denoise true --stage 6           + the denoising encoder
set -euo pipefail

./audiodec.sh \
    --symad_config conf/symAD_16k_tiny.yaml \
    --vocoder_config conf/AudioDec_v1_symAD_16k_tiny.yaml \
    --denoise_config conf/symAD_16k_tiny_denoise.yaml \
    --test_set test \
    "$@"

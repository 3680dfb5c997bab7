#!/usr/bin/env bash
# LaDiffCodec at paper size (Yang et al., ICASSP 2024) on LibriTTS resampled to 16 kHz:
# the authors' discrete codec (EnCodec-style, 1.5 kbps, phase 1), continuous AE
# (1,086,050 parameters, phase 2) and diffusion U-Net (135,118,976 parameters, 1 kbps,
# phase 3); then the diffusion-decoded and the plain codec at 1 kbps in one table.
# GPU: --run_opts "--fs 16000 --ngpu 1 --gpu_inference true". A converted pretrained
# codec instead of phase 1: --codec_exp exp/encodec_released/model.pt (its bandwidths
# must include cond_bandwidth of conf/ladiffcodec_diffusion_16k.yaml).
set -euo pipefail

./ladiffcodec.sh \
    --codec_config conf/ladiffcodec_codec_16k.yaml \
    --ae_config conf/ladiffcodec_ae_16k.yaml \
    --diff_config conf/ladiffcodec_diffusion_16k.yaml \
    --test_set test-clean \
    --run_opts "--fs 16000" \
    "$@"

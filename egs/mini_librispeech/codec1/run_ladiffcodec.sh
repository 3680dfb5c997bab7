#!/usr/bin/env bash
# LaDiffCodec at toy size on the bundled corpus: tiny SoundStream (phase 1), tiny
# continuous AE (phase 2), tiny latent diffusion at 0.8 kbps (phase 3), decoded with DDIM
# and scored next to the plain SoundStream at 0.8 kbps in one table.
# ./run_ladiffcodec.sh                                   everything
# ./run_ladiffcodec.sh --stage 5 --inference_args "--sampling_steps 4"
# ./run_ladiffcodec.sh --codec_exp exp/codec_soundstream_16k_tiny --stage 3   reuse a codec
set -euo pipefail

./ladiffcodec.sh \
    --codec_config conf/soundstream_16k_tiny.yaml \
    --ae_config conf/ladiffcodec_ae_16k_tiny.yaml \
    --diff_config conf/ladiffcodec_diffusion_16k_tiny.yaml \
    --test_set test \
    "$@"

#!/usr/bin/env bash
# VCTK at 16 kHz: run.sh with --fs 16000, its own dump folder and a 16 kHz config.
# Data prep (stage 1, data/) is shared with run.sh; stage 2 resamples.
set -euo pipefail
cd "$(dirname "$0")"
./run.sh --fs 16000 --dumpdir dump_16k --train_config conf/soundstream_16k_4kbps.yaml "$@"

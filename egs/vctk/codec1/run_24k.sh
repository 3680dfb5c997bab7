#!/usr/bin/env bash
# VCTK at 24 kHz: run.sh with --fs 24000, its own dump folder and a 24 kHz config.
# Data prep (stage 1, data/) is shared with run.sh; stage 2 resamples.
set -euo pipefail
cd "$(dirname "$0")"
./run.sh --fs 24000 --dumpdir dump_24k --train_config conf/soundstream_24k_6kbps.yaml "$@"

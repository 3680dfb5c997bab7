#!/usr/bin/env bash
# Stage 1 of vctk: VCTK -> data/all (one microphone), then the held-out speaker split
# data/{train,valid,test} (speakers in README.md). VCTK 0.92 is downloaded first when it
# is not under ${VCTK} (lhotse, from Edinburgh DataShare); a corpus on disk never touches
# the network.
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

mic=mic1       # mic1 (DPA 4035 omni) or mic2 (Sennheiser MKH 800); VCTK 0.92 only
download=true  # download VCTK 0.92 into ${VCTK} when it is missing
nj=4           # parallel audio header reads

help_message="Usage: $0 [options]
Options [default]:
$(grep -E '^[a-z_]+=.*#' "$0" | sed -E 's/^([a-z_]+)=([^ #]*) *# *(.*)$/  --\1 [\2] \3/')"

# shellcheck disable=SC1091
. utils/parse_options.sh
if [ $# -ne 0 ]; then
    echo "${help_message}" >&2
    exit 2
fi
# shellcheck disable=SC1091
. ./path.sh
# shellcheck disable=SC1091
. ./db.sh

SECONDS=0
log "preparing VCTK (${mic}) from ${VCTK} (download if missing: ${download})"
python3 -m codectk.bin.prepare_corpus vctk --corpus_dir "${VCTK}" --out_dir data \
    --mic "${mic}" --split true --download "${download}" --nj "${nj}"
log "data/{all,train,valid,test} written in ${SECONDS} s"

#!/usr/bin/env bash
# Stage 1 of mini_librispeech: the bundled corpus -> data/{train,valid,test}, split by
# speaker (test: 6 speakers, valid: 4, train: the other 60; genders alternate).
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

n_test=6   # test speakers
n_valid=4  # validation speakers
seed=0     # speaker shuffling seed
help_message="Usage: $0 [--n_test 6] [--n_valid 4] [--seed 0]"

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

if [ ! -d "${MINI_LIBRISPEECH}/LibriSpeech/train-clean-100" ]; then
    log "Error: ${MINI_LIBRISPEECH}/LibriSpeech/train-clean-100 not found (set MINI_LIBRISPEECH)"
    exit 1
fi
log "preparing data/all from ${MINI_LIBRISPEECH}"
python3 -m codectk.bin.prepare_librispeech --corpus_dir "${MINI_LIBRISPEECH}" \
    --parts train-clean-100 --out_dir data/all
rm -rf data/train data/valid data/test
python3 -m codectk.bin.split_by_speaker --seed "${seed}" data/all \
    "data/test:${n_test}" "data/valid:${n_valid}" data/train:rest
log "data/{train,valid,test} written"

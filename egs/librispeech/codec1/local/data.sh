#!/usr/bin/env bash
# Stage 1 of librispeech: LibriSpeech parts -> data/<part>, unions -> data/<union>.
# Parts missing under ${LIBRISPEECH} are downloaded first (lhotse, from openslr.org);
# parts on disk never touch the network.
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

sets=train-clean-100,dev-clean,test-clean # comma-separated parts and unions (train-clean-460, train-960)
download=true                             # download the missing parts into ${LIBRISPEECH}
nj=4                                      # parallel audio header reads

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
log "preparing LibriSpeech sets ${sets} from ${LIBRISPEECH} (download missing parts: ${download})"
# shellcheck disable=SC2046
python3 -m codectk.bin.prepare_corpus librispeech --corpus_dir "${LIBRISPEECH}" --out_dir data \
    --sets $(echo "${sets}" | tr ',' ' ') --download "${download}" --nj "${nj}"
log "data/{${sets}} written in ${SECONDS} s"

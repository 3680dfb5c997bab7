#!/usr/bin/env bash
# Stage 1 of libritts: LibriTTS (or LibriTTS-R) parts -> data/<part>, unions ->
# data/<union>. Parts missing under ${LIBRITTS} are downloaded first (lhotse, from
# openslr.org); parts on disk never touch the network.
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

sets=train-clean-100,dev-clean,test-clean # comma-separated parts and unions (train-clean-460, train-960)
variant=auto                              # libritts, libritts_r, or auto (whichever is under ${LIBRITTS}; libritts to download)
download=true                             # download the missing parts into ${LIBRITTS}
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

variant_opts=()
case "${variant}" in
    auto) ;;
    libritts|libritts_r) variant_opts=(--variant "${variant}") ;;
    *) log "Error: --variant ${variant}: choose libritts, libritts_r or auto"; exit 2 ;;
esac
SECONDS=0
log "preparing LibriTTS (${variant}) sets ${sets} from ${LIBRITTS} (download missing parts: ${download})"
# shellcheck disable=SC2046
python3 -m codectk.bin.prepare_corpus libritts --corpus_dir "${LIBRITTS}" --out_dir data \
    --sets $(echo "${sets}" | tr ',' ' ') ${variant_opts[@]+"${variant_opts[@]}"} --download "${download}" --nj "${nj}"
log "data/{${sets}} written in ${SECONDS} s"

# shellcheck shell=bash
# Corpus root: the folder holding LibriSpeech/ (or that folder itself). Override with the
# environment (LIBRISPEECH=/data/corpora ./run.sh); the default is downloads/ in this
# recipe, where local/data.sh downloads the missing parts. Nothing machine-specific here.
LIBRISPEECH=${LIBRISPEECH:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/downloads}
export LIBRISPEECH

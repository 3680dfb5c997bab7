# shellcheck shell=bash
# Corpus root: the folder holding LibriTTS/ or LibriTTS_R/ (or that folder itself).
# Override with the environment (LIBRITTS=/data/corpora ./run.sh); the default is
# downloads/ in this recipe, where local/data.sh downloads the missing parts.
LIBRITTS=${LIBRITTS:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/downloads}
export LIBRITTS

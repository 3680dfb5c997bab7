# shellcheck shell=bash
# Corpus root: the VCTK folder (holding wav48_silence_trimmed/ or wav48/, and txt/) or a
# folder holding VCTK-Corpus-0.92/ or VCTK-Corpus/. Override with the environment
# (VCTK=/data/corpora/VCTK-Corpus-0.92 ./run.sh); the default is downloads/ in this
# recipe, where local/data.sh downloads VCTK 0.92 when it is missing.
VCTK=${VCTK:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/downloads}
export VCTK

# shellcheck shell=bash
# Corpus roots. Override with the environment; nothing here is machine-specific.
MINI_LIBRISPEECH=${MINI_LIBRISPEECH:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/corpus}
export MINI_LIBRISPEECH

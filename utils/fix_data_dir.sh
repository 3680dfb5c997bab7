#!/usr/bin/env bash
# Repair a Kaldi data directory in place: sort every file (LC_ALL=C), keep only the
# utterances present in every utterance-keyed file (wav.scp, utt2spk, text, ...) and
# regenerate spk2utt; the dropped ids go to <data-dir>/.backup/dropped. A thin wrapper
# around "python -m codectk.bin.datadir fix", run with ${PYTHON:-python3}; path.sh puts
# the venv's python3 first on PATH.
set -euo pipefail

help_message="Usage: $0 <data-dir>
Sorts the files of <data-dir>, drops utterances missing from any of its utterance-keyed
files, regenerates spk2utt and prints the kept/dropped counts.
Exit status: 0 fixed, 1 cannot be fixed, 2 usage error."

case "${1:-}" in
  -h|--help) echo "${help_message}"; exit 0 ;;
  -*) echo "$0: unknown option $1" >&2; echo "${help_message}" >&2; exit 2 ;;
esac
if [ $# -ne 1 ]; then
  echo "${help_message}" >&2
  exit 2
fi

exec "${PYTHON:-python3}" -m codectk.bin.datadir fix "$1"

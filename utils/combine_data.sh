#!/usr/bin/env bash
# Combine Kaldi data directories into one, as Kaldi's utils/combine_data.sh: joins the
# utterance-keyed files (an utterance id in two sources is an error), spk2gender, and
# remakes spk2utt; the result is validated. A thin wrapper around
# "python -m codectk.bin.combine_data", run with ${PYTHON:-python3}; path.sh puts the
# venv's python3 first on PATH.
set -euo pipefail

help_message="Usage: $0 <dest-data-dir> <src-data-dir1> [<src-data-dir2> ...]
Writes the union of the source data dirs to <dest-data-dir> (replacing it).
A file that some sources lack is left out, except text, which gets empty transcripts.
Exit status: 0 combined, 1 cannot combine, 2 usage error."

case "${1:-}" in
  -h|--help) echo "${help_message}"; exit 0 ;;
  -*) echo "$0: unknown option $1" >&2; echo "${help_message}" >&2; exit 2 ;;
esac
if [ $# -lt 2 ]; then
  echo "${help_message}" >&2
  exit 2
fi

exec "${PYTHON:-python3}" -m codectk.bin.combine_data "$@"

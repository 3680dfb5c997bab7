#!/usr/bin/env bash
# Check a Kaldi data directory: required files, LC_ALL=C order, matching utterance ids,
# spk2utt/utt2spk agreement, speaker-prefixed utterance ids. A thin wrapper around
# "python -m codectk.bin.datadir validate" (codectk/io/datadir.py does the checking), run
# with ${PYTHON:-python3}; path.sh puts the venv's python3 first on PATH.
set -euo pipefail

help_message="Usage: $0 [--no-text] [--no-feats] <data-dir>
Checks <data-dir>; prints each problem (with the offending lines) and exits 1 if any,
else prints '<data-dir>: valid (<n> utterances, <m> speakers)'.
Options:
  --no-text    do not require a text file (required by default, as in Kaldi's
               validate_data_dir.sh; codec data dirs need none, and the recipes pass it)
  --no-feats   accepted for Kaldi compatibility; codec data dirs have no feats.scp,
               so it is never required (Kaldi requires one without --no-feats)
Exit status: 0 valid, 1 invalid, 2 usage error."

args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-text) args+=(--no-text); shift ;;
    --no-feats) args+=(--no-feats); shift ;;
    -h|--help) echo "${help_message}"; exit 0 ;;
    --) shift; break ;;
    -*) echo "$0: unknown option $1" >&2; echo "${help_message}" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [ $# -ne 1 ]; then
  echo "${help_message}" >&2
  exit 2
fi

status=0
"${PYTHON:-python3}" -m codectk.bin.datadir validate ${args[@]+"${args[@]}"} "$1" || status=$?
if [ "${status}" -eq 1 ] && [ -d "$1" ] && [ ! -f "$1/text" ] \
    && [[ " ${args[*]-} " != *" --no-text "* ]]; then
  echo "(a missing text file: if this is by design, specify --no-text, as in Kaldi)" >&2
fi
exit "${status}"

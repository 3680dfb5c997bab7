#!/usr/bin/env bash
# Kaldi-style option parsing, sourced by a script after it has declared its options as
# shell variables with defaults:
#
#   nj=4             # number of parallel jobs
#   use_gpu=false    # true or false
#   help_message="Usage: $0 [options] <data-dir>"
#   . utils/parse_options.sh
#   [ $# -eq 1 ] || { echo "${help_message}" >&2; exit 2; }
#
# Each option --name value (or --name=value) sets the existing variable "name"; dashes
# in the name stand for underscores, so --use-gpu and --use_gpu both set use_gpu.
#   --config FILE   sources FILE (shell "name=value" lines) before any other option is
#                   applied, so the command line wins over the file.
#   --help, -h      prints $help_message (if set) to stdout and exits 0.
#   --              ends the options.
# Parsing stops at the first argument that does not start with "--"; the remaining
# (positional) arguments are left in "$@".
#
# Exits the sourcing script with status 2 on: an option with no declared variable, an
# option without a value, a value other than true/false for a variable whose current
# value is true or false, or an unreadable --config file.
#
# Sets script_cmdline to the script's full command line (shell-quoted) for logging.
# Works under "set -euo pipefail". Its own helper variables start with "_po_" and are
# unset at the end.

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  echo "Usage: . utils/parse_options.sh   (source it from a script; see its header)" >&2
  exit 2
fi

script_cmdline=$0
if [[ $# -gt 0 ]]; then
  script_cmdline+=$(printf ' %q' "$@")
fi

# Pass 1: source every --config file (in order) before applying the other options.
_po_args=("$@")
_po_i=0
while [[ ${_po_i} -lt ${#_po_args[@]} ]]; do
  _po_arg=${_po_args[_po_i]}
  _po_is_config=false
  case "${_po_arg}" in
    --) break ;;
    --config=*)
      _po_is_config=true; _po_file=${_po_arg#--config=}; _po_i=$((_po_i + 1))
      ;;
    --config)
      if [[ $((_po_i + 1)) -ge ${#_po_args[@]} ]]; then
        echo "$0: option --config needs a value (a config file)" >&2
        exit 2
      fi
      _po_is_config=true; _po_file=${_po_args[_po_i + 1]}; _po_i=$((_po_i + 2))
      ;;
    --*=*|--help|-h) _po_i=$((_po_i + 1)) ;;
    --*) _po_i=$((_po_i + 2)) ;;
    *) break ;;
  esac
  if [[ ${_po_is_config} == true ]]; then
    if [[ ! -f ${_po_file} || ! -r ${_po_file} ]]; then
      echo "$0: --config: cannot read config file '${_po_file}'" >&2
      exit 2
    fi
    # shellcheck disable=SC1090
    . "${_po_file}"
  fi
done

# Pass 2: apply the options in order, shifting them off "$@".
while [[ $# -gt 0 ]]; do
  case "$1" in
    --help|-h)
      if [[ -n ${help_message:-} ]]; then
        printf '%s\n' "${help_message}"
      else
        echo "Usage: $0 [options] ...  (this script has no help message)"
      fi
      exit 0
      ;;
    --) shift; break ;;
    --config=*) shift; continue ;;
    --config) shift 2; continue ;;
    --*=*) _po_name=${1%%=*}; _po_value=${1#*=}; _po_shift=1 ;;
    --*)
      if [[ $# -lt 2 ]]; then
        echo "$0: option $1 needs a value" >&2
        exit 2
      fi
      _po_name=$1; _po_value=$2; _po_shift=2
      ;;
    *) break ;;
  esac
  _po_name=${_po_name#--}
  _po_var=${_po_name//-/_}
  if [[ ! ${_po_var} =~ ^[A-Za-z_][A-Za-z0-9_]*$ || ${_po_var} == _po_* ]] \
      || [[ ! -v ${_po_var} ]]; then
    echo "$0: invalid option --${_po_name}: no variable '${_po_var}' is declared" \
      "(see $0 --help)" >&2
    exit 2
  fi
  _po_old=${!_po_var}
  if [[ ${_po_old} == true || ${_po_old} == false ]] \
      && [[ ${_po_value} != true && ${_po_value} != false ]]; then
    echo "$0: option --${_po_name} takes true or false, got '${_po_value}'" >&2
    exit 2
  fi
  printf -v "${_po_var}" '%s' "${_po_value}"
  shift "${_po_shift}"
done

unset _po_args _po_i _po_arg _po_is_config _po_file _po_name _po_value _po_shift _po_var _po_old

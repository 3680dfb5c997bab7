# shellcheck shell=bash
# Environment of the recipe: codectk's virtual environment and the Kaldi-style utils.
MAIN_ROOT=${MAIN_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
export MAIN_ROOT
if [ ! -x "${MAIN_ROOT}/tools/venv/bin/python3" ]; then
    echo "path.sh: ${MAIN_ROOT}/tools/venv is missing; run 'make install' in ${MAIN_ROOT}" >&2
    return 1
fi
export PATH="${MAIN_ROOT}/tools/venv/bin:${MAIN_ROOT}/utils:${PATH}"
export LC_ALL=C.UTF-8
export PYTHONIOENCODING=UTF-8
export PYTHONDONTWRITEBYTECODE=1


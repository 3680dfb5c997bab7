#!/usr/bin/env bash
# Install the Debian tools the recipes, tests and lint need when they are missing.
# Needs root (or sudo); otherwise says what to install.
set -euo pipefail

# command-that-must-exist:debian-package (one line each; add new tools here)
needs=(
    sox:sox
    flac:flac
    shellcheck:shellcheck
    opusenc:opus-tools
    c2enc:codec2
    chromium:chromium
    munged:munge
    slurmctld:slurmctld
    slurmd:slurmd
    sbatch:slurm-client
)

missing=()
for pair in "${needs[@]}"; do
    tool=${pair%%:*}
    package=${pair#*:}
    command -v "${tool}" >/dev/null 2>&1 || missing+=("${package}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install_system_deps.sh: installing missing Debian packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
else
    echo "install_system_deps.sh: not root and no sudo; please install: ${missing[*]}" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_system_deps.sh: no apt-get; please install: ${missing[*]}" >&2
    exit 1
fi
${sudo} apt-get update -qq
DEBIAN_FRONTEND=noninteractive ${sudo} apt-get install -y -qq --no-install-recommends "${missing[@]}"

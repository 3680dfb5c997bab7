#!/usr/bin/env bash
# Build tools/venv-compare: codectk plus the authors' reference packages for the parity
# tests (`make parity`: test/parity and test/convert):
#   - installed: encodec 0.1.1, descript-audio-codec 1.0.0 (and flashy, which audiocraft's
#     losses import);
#   - downloaded with `pip download --no-deps` and unpacked under tools/venv-compare/ref/,
#     never installed (they pin another torch): audiocraft 1.3.0 and funcodec 0.2.0, whose
#     loss/discriminator/quantizer/balancer files the tests import by path
#     (test/parity/refs.py).
# Never install these into tools/venv: they import torchaudio, whose compiled libraries do
# not load next to codectk's CPU torch; here they are deleted (the parts the reference
# models use are pure Python) and torchaudio's own torch pin is ignored.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=tools/venv-compare
python=${PYTHON:-python3}
torch_spec=${TORCH_SPEC:-$(cat tools/venv/constraints.txt 2>/dev/null || echo torch==2.13.0)}

[ -x "${venv}/bin/python" ] || "${python}" -m venv "${venv}"
"${venv}/bin/pip" install -q --upgrade pip setuptools wheel
# shellcheck disable=SC2086  # TORCH_SPEC may carry an --index-url
"${venv}/bin/pip" install -q ${torch_spec}
"${venv}/bin/python" -c 'import torch; print("torch==" + torch.__version__.split("+")[0])' \
    > "${venv}/constraints.txt"
"${venv}/bin/pip" install -q --no-deps torchaudio==2.11.0 encodec==0.1.1
"${venv}/bin/pip" install -q -c "${venv}/constraints.txt" einops descript-audio-codec==1.0.0
# Separately: descript-audiotools pins protobuf < 3.20, which codectk's tensorboard outgrew;
# pip warns about the pin and goes on (the reference models do not use protobuf).
"${venv}/bin/pip" install -q -c "${venv}/constraints.txt" -r requirements.txt -r requirements-test.txt
"${venv}/bin/pip" install -q -c "${venv}/constraints.txt" flashy==0.0.2
"${venv}/bin/pip" install -q --no-deps -e .
ref=${venv}/ref
mkdir -p "${ref}"
"${venv}/bin/pip" download -q --no-deps -d "${ref}" audiocraft==1.3.0 funcodec==0.2.0
rm -rf "${ref}/audiocraft-1.3.0" "${ref}/funcodec-0.2.0"
tar xzf "${ref}/audiocraft-1.3.0.tar.gz" -C "${ref}"
"${venv}/bin/python" -m zipfile -e "${ref}/funcodec-0.2.0-py3-none-any.whl" "${ref}/funcodec-0.2.0"
rm -f "${venv}"/lib/python3*/site-packages/torchaudio/lib/*.so
"${venv}/bin/python" -c 'import codectk, dac, encodec, flashy; print("tools/venv-compare ready")'

# codectk top-level Makefile.
#   make install   create tools/venv with torch + codectk (+ test tools)
#   make demo      run the bundled recipe (egs/mini_librispeech/codec1) end to end
#   make lint      ruff, the import layers (.importlinter), shellcheck
#   make test      lint + unit tests + end-to-end recipe test
#   make parity    training parity with the authors' code (tools/venv-compare, docs/parity.md)
#   make bench     speed/memory benchmarks: bench/results/latest.json, docs/benchmarks.md
SHELL := /bin/bash
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV := tools/venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
COMPARE_STAMP := tools/venv-compare/.installed
PYTEST_ARGS ?= --durations=25

.PHONY: install demo test unit lint parity bench compare-env clean-demo

install: $(STAMP)

$(STAMP): setup.py requirements.txt requirements-test.txt tools/install_system_deps.sh
	bash tools/install_system_deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -c 'import torch; print("torch==" + torch.__version__.split("+")[0])' > $(VENV)/constraints.txt
	$(PY) -m pip install -q -c $(VENV)/constraints.txt -r requirements-test.txt -e .
	$(PY) -c 'import torch, codectk; print("installed codectk", codectk.__version__, "with torch", torch.__version__)'
	touch $@

lint: install
	$(VENV)/bin/ruff check codectk test
	$(VENV)/bin/ruff format --check codectk test
	$(VENV)/bin/lint-imports --no-cache  # .importlinter: imports point down the layers
	find utils egs tools/*.sh .ci -type f \( -name '*.sh' -o -name run \) -not -path '*/corpus/*' -not -path '*/exp/*' -not -path '*/dump/*' -print0 \
		| xargs -0 shellcheck -x

unit: install
	$(VENV)/bin/pytest -m "not recipe" $(PYTEST_ARGS)

# Test files run in parallel (pytest-xdist, one worker per core up to 4; a file's tests
# stay in one worker, in order, since recipe tests build on the test above them), one
# torch thread per worker; the SLURM tests then run alone, because a loaded machine
# delays the local cluster's scheduling past their timeouts.
XDIST_ARGS ?= -n auto --maxprocesses 4 --dist loadfile
test: lint
	OMP_NUM_THREADS=1 $(VENV)/bin/pytest -m "not slurm" $(XDIST_ARGS) $(PYTEST_ARGS)
	$(VENV)/bin/pytest -m slurm $(PYTEST_ARGS)

demo: install
	bash egs/mini_librispeech/codec1/demo.sh

# The reference comparison (codectk.benchmarks.reference) runs the authors' EnCodec and
# DAC in tools/venv-compare, which make bench builds first; python -m codectk.bin.bench
# without it reports those rows as skipped, naming tools/install_compare_env.sh.
compare-env: $(COMPARE_STAMP)

$(COMPARE_STAMP): $(STAMP) tools/install_compare_env.sh
	bash tools/install_compare_env.sh
	touch $@

# Parity with the authors' code: their packages (and the audiocraft/funcodec files imported
# by path) live in tools/venv-compare; opt-in checkouts come from CODECTK_REF_* variables
# (test/parity/refs.py). docs/parity.md says what each test compares and how closely.
parity: $(COMPARE_STAMP)
	tools/venv-compare/bin/pytest test/parity test/convert $(PYTEST_ARGS)

bench: install $(COMPARE_STAMP)
	$(PY) -m codectk.bin.bench --out bench/results/latest.json --doc docs/benchmarks.md

clean-demo:
	rm -rf egs/mini_librispeech/codec1/{data,dump,exp}

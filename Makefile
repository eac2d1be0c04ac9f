# kbuilder: developer entry points.  `make` alone lists the targets.
#
# Everything the project needs on a machine is installed from here: the
# Debian packages (target `deps`, when root) and the Python environment in
# .venv (target `venv`), so a new machine needs only python3, make and git.

SHELL := /bin/bash
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

# The interpreter the virtual environment is made from (3.11 or newer).
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
CACHE := .cache

# Debian packages the project needs.  Add to this list (qemu-system-x86,
# linux-source-6.1, ...) when a target starts to need more; the `deps` stamp
# records the list, so a changed list is checked again on the next run.
APT_PACKAGES ?= gcc binutils binutils-aarch64-linux-gnu make patch linux-source-6.1 qemu-system-x86 busybox-static flex bison bc libelf-dev libssl-dev dwarves cpio xz-utils kmod nginx openssl
# Commands that must be on PATH; if one is missing, APT_PACKAGES is installed.
REQUIRED_TOOLS ?= gcc readelf ld nm make patch qemu-system-x86_64 busybox flex bison bc
DEPS_STAMP := $(CACHE)/deps.stamp

PYTEST_ARGS ?=

# Inputs of `pip install -e`: a change to any of them reinstalls (and so
# rebuilds the Cython extension).
INSTALL_INPUTS := pyproject.toml setup.py $(wildcard kbuilder/*/*.pyx)

.PHONY: help deps venv testkernel test demo bench clean distclean

help: ## Show this list.
	@echo "kbuilder make targets:"
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN { FS = ":.*## " } { printf "  make %-10s %s\n", $$1, $$2 }'
	@echo "Variables: PYTEST_ARGS='...' (passed to pytest), PYTHON=python3.X (venv interpreter)."

# ---- system packages -------------------------------------------------------
# The stamp holds the package list it was made for; when that list differs
# (edited here or given on the command line) the check runs again.
ifneq ($(strip $(file < $(DEPS_STAMP))),$(strip $(APT_PACKAGES)))
.PHONY: $(DEPS_STAMP)
endif

deps: $(DEPS_STAMP) ## Check the system tools; apt-get install APT_PACKAGES if missing (as root).

$(DEPS_STAMP):
	@APT_PACKAGES='$(APT_PACKAGES)' REQUIRED_TOOLS='$(REQUIRED_TOOLS)' PYTHON='$(PYTHON)' \
		bash tools/deps.sh
	@mkdir -p $(CACHE)
	@echo '$(strip $(APT_PACKAGES))' > $@

# ---- Python environment ----------------------------------------------------
venv: $(VENV_STAMP)

$(VENV_STAMP): $(INSTALL_INPUTS) | $(DEPS_STAMP)
	@if ! $(VPY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
		if ! $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
			echo "make: $(PYTHON) is missing or older than 3.11; run e.g. 'make PYTHON=python3.11 ...'" >&2; \
			exit 1; \
		fi; \
		echo "--> creating $(VENV) with $$($(PYTHON) --version)"; \
		rm -rf $(VENV); \
		$(PYTHON) -m venv $(VENV); \
	fi
	@echo "--> installing kbuilder into $(VENV) (pip install -e '.[test]', builds the Cython extension)"
	@$(VPY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(VPY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@env -u KBUILDER_NO_EXTENSIONS $(VPY) -c 'from kbuilder.elf import tables; assert tables.COMPILED, "the Cython extension was not built"'
	@touch $@

# ---- jobs ------------------------------------------------------------------
testkernel: deps venv ## Prepare the cached livepatch test kernel (first time: about 4-6 minutes).
	@$(VENV)/bin/kbuild testkernel

test: deps venv testkernel ## Build the test kernel if needed, then run the whole suite (QEMU included).
	@rc=0; $(VPY) -m pytest -q $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5): failing" >&2; fi; \
	exit $$rc

demo: deps venv ## Build the test kernel if needed, livepatch it with examples/cmdline-string.patch in QEMU.
	@bash tools/demo.sh

bench: deps venv ## Measure read, diff and kbuild build latency; writes docs/performance.md.
	@$(VPY) tools/bench.py

clean: ## Remove build artefacts, caches and the compiled extension (keeps .venv).
	rm -rf build dist $(CACHE) *.egg-info .pytest_cache .hypothesis
	rm -f kbuilder/elf/_tables.c kbuilder/elf/_tables.*.so kbuilder/compare/_fastcmp.c kbuilder/compare/_fastcmp.*.so
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -print0 | xargs -0 rm -rf
	rm -f $(VENV_STAMP)

distclean: clean ## clean, and remove .venv too.
	rm -rf $(VENV)

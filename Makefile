# Two commands for users: `make demo` and `make test`. Each one sets up what it needs
# (virtual environment, Python packages, configurable-http-proxy, and as root on Debian
# the system packages), so a fresh clone needs nothing else.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lightbox-installed

.PHONY: demo test setup system-packages clean

demo: setup
	$(BIN)/lightbox demo $(LIGHTBOX_DEMO_ARGS)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: system-packages $(STAMP) node_modules/.bin/configurable-http-proxy

system-packages:
	@bash scripts/install-system-packages.sh

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

node_modules/.bin/configurable-http-proxy: package.json hub/idp_node/package-lock.json
	npm install --no-audit --no-fund --loglevel=error && npm ci --prefix hub/idp_node --no-audit --no-fund --loglevel=error
	@touch $@

clean:
	rm -rf $(VENV) node_modules

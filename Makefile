# Two commands for users: `make demo` and `make test`. Each one sets up what it needs
# (virtual environment, Python packages, configurable-http-proxy, and as root on Debian
# the system packages), so a fresh clone needs nothing else.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lightbox-installed
# The JupyterLab extension: built from the npm registry alone with @jupyterlab/builder
# against the installed JupyterLab, then linked where JupyterLab looks for extensions.
LABEXT := extensions/labextension
LABEXT_LINK := $(VENV)/share/jupyter/labextensions/@lightbox/lab
LABEXT_STAMP := $(VENV)/.lightbox-labextension
# An editable install skips pyproject's data-files, so the jupyter-config file that
# enables the server extension is copied here (a wheel carries both itself).
SERVER_CONFIG := $(VENV)/etc/jupyter/jupyter_server_config.d/lightbox_extensions.json
LABEXT_SOURCES := $(LABEXT)/package.json $(wildcard $(LABEXT)/src/*.js $(LABEXT)/style/*.css)

.PHONY: demo test setup system-packages clean

# Ctrl-C is how a demo ends: the shell outlives it (trap) and exit 130, the demo's
# answer to Ctrl-C after its clean stop, is no error for make to report.
demo: setup
	@trap true INT; $(BIN)/lightbox demo $(LIGHTBOX_DEMO_ARGS) || [ $$? -eq 130 ]

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: system-packages $(STAMP) node_modules/.bin/configurable-http-proxy $(LABEXT_STAMP) $(SERVER_CONFIG)

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

$(LABEXT)/node_modules/.package-lock.json: $(LABEXT)/package.json $(LABEXT)/package-lock.json
	npm ci --prefix $(LABEXT) --no-audit --no-fund --loglevel=error

$(LABEXT)/dist/package.json: $(STAMP) $(LABEXT)/node_modules/.package-lock.json $(LABEXT_SOURCES)
	rm -rf $(LABEXT)/dist
	cd $(LABEXT) && node node_modules/@jupyterlab/builder/lib/build-labextension.js \
	  --core-path "$$($(CURDIR)/$(BIN)/python -c 'import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), "staging"))')" .

$(LABEXT_STAMP): $(LABEXT)/dist/package.json
	rm -rf $(LABEXT_LINK)
	mkdir -p $(dir $(LABEXT_LINK))
	ln -s $(CURDIR)/$(LABEXT)/dist $(LABEXT_LINK)
	@touch $@

$(SERVER_CONFIG): extensions/server/etc/lightbox_extensions.json $(STAMP)
	mkdir -p $(dir $@)
	cp $< $@

clean:
	rm -rf $(VENV) node_modules $(LABEXT)/node_modules $(LABEXT)/dist

# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
REDIS_DIR := var/redis
REDIS_PORT := 6379
# The local Redis also listens on a Unix socket (owner only): a round trip through it costs
# both processes less CPU than one through loopback TCP, on every request that checks a
# session. `make run` and `make serve` use it when it is there, TCP otherwise.
# (Not in a folder whose path is too long for a socket's, about 100 bytes: TCP only there.)
REDIS_SOCKET := $(REDIS_DIR)/redis.sock
REDIS_SOCKET_ARGS := $(if $(shell [ $$(printf %s "$(CURDIR)/$(REDIS_SOCKET)" | wc -c) -le 100 ] \
                       && echo short),--unixsocket $(CURDIR)/$(REDIS_SOCKET) --unixsocketperm 700)
LOCAL_REDIS_URL = $$(if [ -S $(REDIS_SOCKET) ]; then echo "unix://$(CURDIR)/$(REDIS_SOCKET)?db=0"; \
                     else echo "redis://127.0.0.1:$(REDIS_PORT)/0"; fi)

.PHONY: run serve test test-host package package-venv postgresql bench bench-outage bench-reset bench-scripts mutants install redis-server chromium demo-screenshot admin-screenshot wrk redis redis-stop migrate superuser clean

# Installs a Debian package (as root, or through sudo), else says how: $(1) the package,
# $(2) the hint.
apt_install = { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's $(1)..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; \
	  else \
	    echo "$(2)"; \
	    exit 1; \
	  fi; }

install: $(BIN)/.installed

$(BIN)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

# A real redis-server binary: Debian's package when we may install it, else a one-line hint.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || $(call apt_install,redis-server,redis-server not found: install Redis >= 7 (Debian/Ubuntu: sudo apt-get install redis-server) and retry.)
	@command -v redis-server >/dev/null 2>&1 || { echo "redis-server still not found after install."; exit 1; }

# Debian's Chromium for the browser tests (tests/browser): Playwright drives it through
# `executable_path`, so Playwright's own browser downloads are never needed.
chromium:
	@command -v chromium >/dev/null 2>&1 || $(call apt_install,chromium,chromium not found: install it (Debian/Ubuntu: sudo apt-get install chromium) and retry.)
	@command -v chromium >/dev/null 2>&1 || { echo "chromium still not found after install."; exit 1; }

# Debian's PostgreSQL 15 for the host-project tests (tests/host), which initdb a throwaway
# cluster of their own in a temporary folder; no server of the package is started or used.
postgresql:
	@[ -x /usr/lib/postgresql/15/bin/initdb ] || command -v initdb >/dev/null 2>&1 || $(call apt_install,postgresql,PostgreSQL not found: install it (Debian/Ubuntu: sudo apt-get install postgresql) and retry.)

# The local Redis for `make run`: data in var/redis (git-ignored), AOF on, loopback only.
# Skipped when REDIS_URL is set; reused when something already answers on the port.
redis: redis-server
	@if [ -n "$$REDIS_URL" ]; then echo "Using REDIS_URL=$$REDIS_URL"; \
	elif redis-cli -h 127.0.0.1 -p $(REDIS_PORT) ping >/dev/null 2>&1; then \
	  echo "Redis already running on 127.0.0.1:$(REDIS_PORT)"; \
	else \
	  mkdir -p $(REDIS_DIR) && \
	  redis-server --bind 127.0.0.1 --port $(REDIS_PORT) --dir $(CURDIR)/$(REDIS_DIR) \
	    $(REDIS_SOCKET_ARGS) \
	    --appendonly yes --daemonize yes --pidfile $(CURDIR)/$(REDIS_DIR)/redis.pid \
	    --logfile $(CURDIR)/$(REDIS_DIR)/redis.log && \
	  for i in 1 2 3 4 5 6 7 8 9 10; do redis-cli -p $(REDIS_PORT) ping >/dev/null 2>&1 && break; sleep 0.2; done; \
	  echo "Started redis-server on 127.0.0.1:$(REDIS_PORT) (make redis-stop stops it)"; \
	fi

# Waits for the process to exit: Redis writes its AOF on the way out, so removing var/ too
# early makes it refuse to shut down.
redis-stop:
	@if [ -f $(REDIS_DIR)/redis.pid ]; then \
	  pid=$$(cat $(REDIS_DIR)/redis.pid); kill $$pid 2>/dev/null; \
	  for i in $$(seq 50); do kill -0 $$pid 2>/dev/null || break; sleep 0.1; done; \
	  if kill -0 $$pid 2>/dev/null; then echo "redis-server ($$pid) did not stop"; exit 1; fi; \
	  echo "Stopped redis-server"; fi

migrate: install
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(BIN)/python manage.py migrate --noinput

run: install redis migrate
	REDIS_URL="$${REDIS_URL:-$(LOCAL_REDIS_URL)}" DJANGO_DEBUG=$${DJANGO_DEBUG:-1} \
	  $(BIN)/python manage.py runserver 127.0.0.1:8000

# As in production, on loopback: DEBUG off, static files collected (hashed, gzipped) and
# served by WhiteNoise, gunicorn with config/gunicorn.conf.py (GUNICORN_BIND, GUNICORN_WORKERS).
# Without DJANGO_SECRET_KEY, a random key is generated once into var/secret-key (git-ignored).
SECRET_KEY_FILE := var/secret-key

serve: install redis migrate
	@if [ -z "$$DJANGO_SECRET_KEY" ] && [ ! -s $(SECRET_KEY_FILE) ]; then \
	  mkdir -p var && (umask 077 && $(BIN)/python -c \
	    'import secrets; print(secrets.token_urlsafe(50))' > $(SECRET_KEY_FILE)) && \
	  echo "Generated a secret key for this machine in $(SECRET_KEY_FILE) (DJANGO_SECRET_KEY overrides it)"; \
	fi
	@export DJANGO_DEBUG=0 DJANGO_SECRET_KEY="$${DJANGO_SECRET_KEY:-$$(cat $(SECRET_KEY_FILE))}" \
	  REDIS_URL="$${REDIS_URL:-$(LOCAL_REDIS_URL)}" && \
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0 && \
	exec $(BIN)/python -m gunicorn -c config/gunicorn.conf.py

superuser: install migrate
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(BIN)/python manage.py createsuperuser

# The tests start (and stop) their own redis-server on a free loopback port.
test: install redis-server chromium postgresql package-venv
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest

# The app installed from its wheel into a project made by `django-admin startproject`, on
# PostgreSQL and SQLite (tests/host; also part of `make test`).
test-host: install redis-server postgresql package-venv
	$(BIN)/python -m pytest tests/host

# The distribution (pyproject.toml): a wheel and an sdist of the tokens app in dist/, checked
# by twine. The build tools live in a virtualenv of their own, never in the project's.
PACKAGE_VENV := var/package-venv

package-venv: $(PACKAGE_VENV)/.installed

$(PACKAGE_VENV)/.installed: requirements-package.txt
	$(PYTHON) -m venv $(PACKAGE_VENV)
	$(PACKAGE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PACKAGE_VENV)/bin/python -m pip install --quiet -r requirements-package.txt
	touch $@

package: package-venv
	rm -rf dist
	$(PACKAGE_VENV)/bin/python -m build --outdir dist .
	$(PACKAGE_VENV)/bin/python -m twine check --strict dist/*

# docs/demo.png: the demo page after a login, as Chromium shows it (a browser test saves it).
demo-screenshot: install redis-server chromium
	DEMO_SCREENSHOT=1 $(BIN)/python -m pytest tests/browser -q -k reload

# docs/admin-sessions.png: a user's Sessions page in the admin, at 1280 px (a browser test saves it).
admin-screenshot: install redis-server chromium
	ADMIN_SCREENSHOT=1 $(BIN)/python -m pytest tests/browser/test_admin.py -q

# The benchmark has its own environment: the peer (simplejwt) never enters the project's.
BENCH_VENV := bench/.venv

$(BENCH_VENV)/.installed: requirements.txt bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -r requirements.txt -r bench/requirements.txt
	touch $@

wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else echo "wrk not found: sudo apt-get install wrk"; exit 1; fi; }

# Writes bench/results.md and bench/results.json (about 10 minutes; BENCH_DURATION=2 for a quick look).
bench: $(BENCH_VENV)/.installed redis-server wrk
	$(BENCH_VENV)/bin/python bench/run.py

# Writes bench/outage.md: how long a request waits for its 503 when Redis hangs or dies (~2 min).
bench-outage: install redis-server
	$(BIN)/python bench/outage.py

# Writes bench/scripts.md: how long the scripts that end a user's many sessions hold Redis (~1 min).
bench-scripts: install redis-server
	$(BIN)/python bench/scripts.py

# Writes bench/reset_timing.md: when the reset endpoint's answer ends, with and without an account (~30 s).
bench-reset: install redis-server
	$(BIN)/python bench/reset_timing.py

# Mutation testing has its own environment too (mutmut never enters the project's), and is
# not part of `make test`: it is slow. Writes mutants/report.md; fails on a survivor that
# mutation/accepted.txt does not list. MUTANTS_ARGS: e.g. --sample 3, --only tokens.cookies.*
MUTANTS_VENV := .venv-mutants

$(MUTANTS_VENV)/.installed: requirements.txt mutation/requirements.txt
	$(PYTHON) -m venv $(MUTANTS_VENV)
	$(MUTANTS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MUTANTS_VENV)/bin/python -m pip install --quiet -r requirements.txt -r mutation/requirements.txt
	touch $@

mutants: $(MUTANTS_VENV)/.installed redis-server
	$(MUTANTS_VENV)/bin/python -m mutation.run $(MUTANTS_ARGS)

clean: redis-stop
	rm -rf $(VENV) $(BENCH_VENV) $(MUTANTS_VENV) mutants var dist .pytest_cache

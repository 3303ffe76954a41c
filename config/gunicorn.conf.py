"""gunicorn settings for production and `make serve`: `gunicorn -c config/gunicorn.conf.py`.

Deploy-specific values come from the environment (see README, "Production").
"""

import os
import shutil
import tempfile
from pathlib import Path

from gunicorn.glogging import Logger

wsgi_app = "config.wsgi:application"

# Loopback unless told: a reverse proxy (TLS, buffering of slow clients) belongs in front.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", str(2 * (os.cpu_count() or 1) + 1)))
# A hung Redis fails a request within about two seconds (bench/outage.md), so 30 s only
# catches a worker that is truly stuck. On SIGTERM, requests in flight get 20 s to finish.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5

# gunicorn's control socket (for `gunicornc`: worker counts, reload, shutdown) is by default
# one path per user ($XDG_RUNTIME_DIR/gunicorn.ctl, else ~/.gunicorn/gunicorn.ctl) for every
# instance on the machine, so two deployments, or a deployment and a test run, took over
# each other's. Off, unless GUNICORN_CONTROL_SOCKET gives this instance a path of its own.
_control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
if _control_socket:
    control_socket = _control_socket
else:
    control_socket_disable = True

accesslog = "-"
# The path only: a query string can carry a token, and no header is logged (Authorization,
# Cookie, Idempotency-Key, Referer). Not %(r)s, which is the raw request line with its query.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'


class AccessLogger(Logger):
    """gunicorn's logger, with the percent-decoded path escaped: a request for `/%1b[2J`
    must not reach an operator's terminal as a control sequence."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["U"] = atoms["U"].encode("unicode_escape").decode("ascii")
        return atoms


logger_class = AccessLogger


# Prometheus metrics, added up over the workers: each worker writes its samples to files in
# PROMETHEUS_MULTIPROC_DIR (a fresh temporary directory unless set), emptied at start so a
# restart counts from zero, and a dead worker's live gauges are dropped.
_metrics_dir_created = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _metrics_dir_created:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tokens-metrics-")


def on_starting(server) -> None:
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _metrics_dir_created:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)

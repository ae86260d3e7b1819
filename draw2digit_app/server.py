"""Production servers: waitress threads in one process, or gunicorn worker processes.

Each gunicorn worker builds its own app (and loads the model once) after the
fork, so nothing is shared but the listening socket; Prometheus metrics are
written per process to ``PROMETHEUS_MULTIPROC_DIR`` and summed by ``/metrics``.
A worker that dies is replaced by the arbiter; only its requests in flight fail.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from flask import Flask


def trust_proxies(app: Flask, hops: int) -> Flask:
    """Honour X-Forwarded-For/-Proto/-Host from ``hops`` reverse proxies, and only then."""
    if hops > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    return app


def serve_waitress(app: Flask, host: str, port: int, threads: int) -> None:
    import waitress

    waitress.serve(app, host=host, port=port, threads=threads, ident="draw2digit")


def serve_gunicorn(config: dict[str, Any], host: str, port: int, workers: int, threads: int) -> None:
    """``workers`` processes behind gunicorn's arbiter, ``threads`` threads each."""
    from gunicorn.app.base import BaseApplication

    own_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        own_dir = tempfile.mkdtemp(prefix="draw2digit-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_dir  # before any metric exists, in every worker

    def child_exit(_server, worker) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # a dead worker's live gauges stop counting

    class Server(BaseApplication):
        def load_config(self) -> None:
            settings = {
                "bind": f"{host}:{port}",
                "workers": workers,
                "threads": threads,
                "worker_class": "gthread",
                "timeout": 60,
                "graceful_timeout": 20,
                "child_exit": child_exit,
                "accesslog": None,  # the app logs one line per request itself, with its request id
                "proc_name": "draw2digit",
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self):
            from draw2digit_app import create_app

            app = create_app(config)  # in the worker, after the fork: one model per process
            return trust_proxies(app, int(app.config["TRUSTED_PROXIES"]))

    try:
        Server().run()
    finally:
        if own_dir:
            shutil.rmtree(own_dir, ignore_errors=True)

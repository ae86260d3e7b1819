"""What operators watch: Prometheus metrics, a request id on every request, one log line per request.

Metrics are made on first use, not at import: with several worker processes
(``draw2digit serve --workers N``) ``PROMETHEUS_MULTIPROC_DIR`` must be set
before the first one exists, and ``/metrics`` then adds up every worker's
files (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, g, request

log = logging.getLogger("draw2digit.app")
REQUEST_ID = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # anything else is replaced, never logged as given


@dataclass(frozen=True)
class Metrics:
    requests: Any  # Counter: route, method, status
    predictions: Any  # Counter: outcome = digit | blank | rejected | number
    inference: Any  # Histogram: seconds spent in the model per request
    corrections: Any  # Counter: corrections stored
    limited: Any  # Counter: requests refused by a rate limit, by route
    model: Any  # Gauge set to 1, labelled with the model's name and version


_metrics: Metrics | None = None
_lock = threading.Lock()


def get_metrics() -> Metrics:
    """The process's metrics, made once."""
    global _metrics
    with _lock:
        if _metrics is None:
            from prometheus_client import Counter, Gauge, Histogram

            _metrics = Metrics(
                Counter("draw2digit_requests", "HTTP requests answered", ["route", "method", "status"]),
                Counter("draw2digit_predictions", "Drawings read, by outcome", ["outcome"]),
                Histogram(
                    "draw2digit_inference_seconds",
                    "Preprocessing and inference per /predict request",
                    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
                ),
                Counter("draw2digit_corrections", "Corrections stored"),
                Counter("draw2digit_rate_limited", "Requests refused by a rate limit (429)", ["route"]),
                Gauge(
                    "draw2digit_model_info",
                    "The model being served (always 1)",
                    ["name", "version"],
                    multiprocess_mode="max",
                ),
            )
        return _metrics


def render_metrics() -> Response:
    """``GET /metrics``: this process's metrics, or every worker's when in multiprocess mode."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    get_metrics()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """Request ids, per-request metrics and (with ``LOG_REQUESTS``) one log line per request."""
    card = app.extensions["draw2digit.predictor"].card
    get_metrics().model.labels(card.name, str(card.version or "unknown")).set(1)

    @app.before_request
    def _start() -> None:
        given = request.headers.get(REQUEST_ID, "")
        g.request_id = given if _VALID_ID.match(given) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers[REQUEST_ID] = g.get("request_id", "")
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        get_metrics().requests.labels(route, request.method, str(response.status_code)).inc()
        if app.config["LOG_REQUESTS"]:
            _log_request(app, response)
        return response


def _log_request(app: Flask, response: Response) -> None:
    ms = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
    fields = {
        "request_id": g.get("request_id"),
        "remote": request.remote_addr,
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "bytes": response.content_length,
        "ms": round(ms, 1),
    }
    if app.config["LOG_FORMAT"] == "json":
        log.info(json.dumps({"event": "request", **fields}))
    else:
        log.info(
            '%s "%s %s" %s %s %.1fms id=%s',
            fields["remote"],
            fields["method"],
            request.full_path.rstrip("?"),
            fields["status"],
            fields["bytes"] or "-",
            ms,
            fields["request_id"],
        )


def count_predictions(results: list[dict], seconds: float) -> None:
    """``/predict``'s outcomes and the time spent reading them."""
    m = get_metrics()
    m.inference.observe(seconds)
    for r in results:
        if r.get("blank"):
            outcome = "blank"
        else:
            outcome = "number" if "number" in r else "rejected" if r.get("rejected") else "digit"
        m.predictions.labels(outcome).inc()

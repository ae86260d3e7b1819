"""Rate limits on ``POST /feedback`` (on by default) and ``POST /predict`` (off unless turned on).

Flask-Limiter counts per client address as the app sees it (after
``TRUSTED_PROXIES``), in the storage ``RATELIMIT_STORAGE`` names: by default the
corrections database, so a limit holds whichever worker or pod serves the client.
A limited request gets 429, ``{"error": "too many ..., try again in N s"}`` and
``Retry-After``; ``/metrics`` counts them by route.
"""

from __future__ import annotations

import time

from flask import Flask, Response, current_app, jsonify, request
from flask_limiter import Limiter, RateLimitExceeded

from draw2digit.ratelimit import DATABASE, OFF
from draw2digit_app.observability import get_metrics
from draw2digit_app.resources import STORE

LIMITER = "draw2digit.limiter"
LIMITED = {
    "api.feedback": ("FEEDBACK_LIMIT", "corrections"),
    "api.forget": ("FEEDBACK_LIMIT", "requests"),
    "api.predict": ("PREDICT_LIMIT", "requests"),
}


def client_address() -> str:
    return request.remote_addr or "unknown"


def init_app(app: Flask) -> Limiter:
    storage = app.config["RATELIMIT_STORAGE"]
    options = {"store": app.extensions[STORE]} if storage == DATABASE else {}
    limiter = Limiter(
        client_address,
        app=app,
        storage_uri=storage,
        storage_options=options,
        strategy="fixed-window",
        headers_enabled=True,
        swallow_errors=True,  # a limiter that cannot count lets the request through, and logs why
    )
    for endpoint, (setting, _) in LIMITED.items():
        value = str(app.config[setting]).strip()
        if value.lower() != OFF:  # the wrapped view is what checks a decorated limit
            app.view_functions[endpoint] = limiter.limit(value)(app.view_functions[endpoint])
    app.register_error_handler(RateLimitExceeded, _too_many)
    app.extensions[LIMITER] = limiter
    return limiter


def _too_many(exc: RateLimitExceeded) -> Response:
    limiter: Limiter = current_app.extensions[LIMITER]
    current = limiter.current_limit
    wait = max(1, int(current.reset_at - time.time())) if current else 60  # as Retry-After says
    what = LIMITED.get(request.endpoint or "", ("", "requests"))[1]
    get_metrics().limited.labels(request.url_rule.rule if request.url_rule else "unmatched").inc()
    response = jsonify(error=f"too many {what} from this address: try again in {wait} s")
    response.status_code = 429
    response.headers["Retry-After"] = str(wait)
    return response

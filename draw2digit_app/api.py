"""JSON API: ``POST /predict`` and ``/feedback``, ``GET /health``, ``/api/model`` and ``/openapi.json``.

Every decision about images lives in ``draw2digit``; this module only turns HTTP
into library calls and library errors into status codes (``abort`` with a
message; the app's handler writes it as ``{"error": ...}``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np
from flask import Blueprint, abort, current_app, jsonify, request
from werkzeug.exceptions import BadRequest

from draw2digit import __version__
from draw2digit.decode import (
    ImageTooLargeError,
    InvalidImageError,
    PreprocessError,
    UnsupportedImageError,
    decode_image_text,
)
from draw2digit.explain import overlay_data_url
from draw2digit.feedback import StoreUnavailable
from draw2digit.personal import InvalidUser, Personal, check_user
from draw2digit.predictor import DigitInNumber, Prediction
from draw2digit.preprocess import preprocess
from draw2digit_app.observability import count_predictions, get_metrics, render_metrics
from draw2digit_app.openapi import spec
from draw2digit_app.resources import get_personalizer, get_predictor, get_store

bp = Blueprint("api", __name__)

#: Raw-body content types we accept (the formats preprocess decodes).
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/jpg", "image/webp", "image/bmp", "image/gif"})
STATUS = {InvalidImageError: 400, UnsupportedImageError: 415, ImageTooLargeError: 413}
MODES = ("digit", "number")
MISSING_IMAGE = "missing field 'image' (a data URL or base64 string)"
NOT_A_DIGIT = "not a digit"  # the label of a correction that says the drawing is no digit
NOT_A_STRING = "'image' must be a string (data URL or base64)"


def refuse(exc: PreprocessError, where: str = "") -> NoReturn:
    """A library error about an image, as the status code it deserves."""
    status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
    abort(status, f"{where}{exc}")


@dataclass(frozen=True)
class DrawingRequest:
    """A request read once, whatever its form (JSON, multipart, raw image), for any route."""

    sources: list[bytes]  # encoded images; text from a client is decoded, never read as a path
    batch: bool = False
    mode: str = "digit"
    return_input: bool = False
    explain: bool = False
    fields: Mapping[str, Any] = field(default_factory=dict)  # the rest of the body (e.g. label)
    user: str | None = None  # the sender's opaque id: answers learn from what they corrected
    final: bool = False  # the drawing is finished: an answer not corrected is remembered as accepted


def _decoded(text: str, where: str = "") -> bytes:
    try:
        return decode_image_text(text)
    except PreprocessError as exc:
        refuse(exc, where)


def _mode(value: Any) -> str:
    """Checked where the request is read, before any image is decoded."""
    if value not in MODES:
        abort(400, f"'mode' must be one of {', '.join(MODES)}")
    return value


def _user(value: Any) -> str | None:
    """Checked where the request is read, before any image is decoded."""
    if value is None:
        return None
    try:
        return check_user(value)
    except InvalidUser as exc:
        abort(400, str(exc))


def _text_flag(value: str | None, name: str) -> bool:
    """A form or query flag: true or false; anything else is a 400, not a silent false."""
    if value is None:
        return False
    flags = {"true": True, "false": False}
    if value.strip().lower() not in flags:
        abort(400, f"'{name}' must be true or false")
    return flags[value.strip().lower()]


def _is_json() -> bool:
    return request.mimetype == "application/json" or (not request.mimetype and bool(request.content_length))


def _json_object(example: str) -> dict:
    try:
        body = request.get_json(force=True)
    except BadRequest:
        abort(400, "the body is not valid JSON")
    except RecursionError:  # a list nested thousands deep
        abort(400, "the JSON body is nested too deeply")
    if not isinstance(body, dict):
        abort(400, f"the JSON body must be an object, e.g. {example}")
    return body


def _images_from_json(body: dict, allow_batch: bool) -> tuple[list[bytes], bool]:
    if allow_batch and "images" in body:
        images = body["images"]
        if not isinstance(images, list) or not images:
            abort(400, "'images' must be a non-empty list of image strings")
        limit = current_app.config["MAX_BATCH"]
        if len(images) > limit:
            abort(400, f"at most {limit} images per request, got {len(images)}")
        for i, item in enumerate(images):
            if not isinstance(item, str):
                abort(400, f"images[{i}] must be a string (data URL or base64)")
        return [_decoded(item, f"images[{i}]: ") for i, item in enumerate(images)], True
    if "image" not in body:
        abort(400, MISSING_IMAGE)
    if not isinstance(body["image"], str):
        abort(400, NOT_A_STRING)
    return [_decoded(body["image"])], False


def read_drawing_request(*, predict: bool, example: str) -> DrawingRequest:
    """The request as a :class:`DrawingRequest`, or a 4xx JSON error saying what is wrong.

    ``predict`` also reads what only ``/predict`` takes: batches, raw image
    bodies, ``mode``, ``return_input`` and ``explain``.
    """
    mimetype = request.mimetype
    if _is_json():
        body = _json_object(example)
        user = _user(body.get("user"))
        if not predict:
            return DrawingRequest(_images_from_json(body, allow_batch=False)[0], fields=body, user=user)
        flags = {name: body.get(name, False) for name in ("return_input", "explain", "final")}
        for name, value in flags.items():
            if not isinstance(value, bool):
                abort(400, f"'{name}' must be true or false")
        mode = _mode(body.get("mode", "digit"))
        sources, batch = _images_from_json(body, allow_batch=True)
        return DrawingRequest(sources, batch, mode, fields=body, user=user, **flags)
    if mimetype == "multipart/form-data":
        mode = _mode(request.form.get("mode", request.args.get("mode", "digit"))) if predict else "digit"
        user = _user(request.form.get("user", request.args.get("user")))
        final = _text_flag(request.form.get("final", request.args.get("final")), "final")
        upload = request.files.get("image")
        if upload is None:
            abort(400, "missing file field 'image' in the form")
        return DrawingRequest([upload.read()], mode=mode, fields=request.form, user=user, final=final)
    if not mimetype:
        abort(400, "the request has no body")
    if predict and mimetype in IMAGE_TYPES:
        mode = _mode(request.args.get("mode", "digit"))
        user = _user(request.args.get("user"))
        final = _text_flag(request.args.get("final"), "final")
        data = request.get_data(cache=False)
        if not data:
            abort(400, "the request body is empty")
        return DrawingRequest([data], mode=mode, user=user, final=final)
    if not predict:
        abort(415, f"unsupported content type {mimetype!r}: send application/json or a form")
    abort(
        415,
        f"unsupported content type {mimetype!r}: send application/json, multipart/form-data "
        "or an image (image/png, image/jpeg, image/webp, image/bmp, image/gif)",
    )


def _as_json(pred: Prediction | Personal, req: DrawingRequest) -> dict:
    out = pred.to_dict()
    pred = pred.prediction if isinstance(pred, Personal) else pred
    if req.return_input:
        out["input"] = [[round(float(v), 3) for v in row] for row in pred.image]
    if req.explain:
        saliency = get_predictor().saliency(pred)
        out["saliency"] = [[round(float(v), 3) for v in row] for row in saliency]
        out["saliency_png"] = overlay_data_url(pred.image, saliency)
    return out


def _each(req: DrawingRequest, fn) -> list:
    """``fn`` on every image, a bad one answered with its index in a batch."""
    results = []
    for i, source in enumerate(req.sources):
        try:
            results.append(fn(source))
        except PreprocessError as exc:
            refuse(exc, f"images[{i}]: " if req.batch else "")
    return results


@bp.post("/predict")
def predict():
    req = read_drawing_request(predict=True, example='{"image": "data:image/png;base64,..."}')
    predictor = get_predictor()
    started = time.perf_counter()
    if req.mode == "number":
        numbers = _each(req, predictor.predict_number)
        answers = get_personalizer().answer_numbers(numbers, req.user) if req.user else numbers
        results = [n.to_dict() for n in answers]
    else:
        items = _each(req, preprocess)
        predictions = predictor.predict_preprocessed(items)
        answers = get_personalizer().answer(predictions, req.user) if req.user else predictions
        results = [_as_json(p, req) for p in answers]
        if req.final and not req.batch and _wide(items[0]):  # finished, and wide: is it several digits?
            number = predictor.predict_number(req.sources[0])
            if len(number.digits) > 1 and not any(d.rejected for d in number.digits):
                results[0]["looks_like_number"] = number.number
    count_predictions(results, time.perf_counter() - started)
    response = jsonify(predictions=results) if req.batch else jsonify(results[0])
    if req.user and req.final and req.mode == "digit":  # remembered after the reply, off its path
        get_personalizer().accept_later(req.user, answers)
    return response


def _wide(item) -> bool:
    """Ink about as wide as tall: one digit seldom is, two side by side are (the reader is not free)."""
    if item.blank or item.box is None:
        return False
    left, top, right, bottom = item.box
    return right - left > 0.9 * (bottom - top)


def _whole_number(
    body: Mapping[str, Any], name: str, wants: str, *, required: bool = False, most: int | None = None
) -> int | None:
    """A whole-number field (form fields arrive as text), or a 400 saying what it must be."""
    value = body.get(name)
    if value is None and not required:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < 0
        or (most is not None and value > most)
    ):
        abort(400, f"'{name}' must be {wants}")
    return value


def _piece(source: bytes, position: int) -> tuple[DigitInNumber, int]:
    """The digit at ``position`` as the number reader cuts this drawing, and what it read there."""
    number = get_predictor().predict_number(source)
    if position >= len(number.digits):
        found = len(number.digits)
        digits = "1 digit" if found == 1 else f"{found} digits"
        abort(400, f"'position' {position} is past the last digit: the drawing has {digits}")
    d = number.digits[position]
    return d, d.digit


@bp.post("/feedback")
def feedback():
    """Store a correction: the drawing and the digit it really is."""
    req = read_drawing_request(predict=False, example='{"image": "...", "label": 3}')
    if "label" not in req.fields:
        abort(400, "missing field 'label' (the digit the drawing really is, or \"not a digit\")")
    if req.fields.get("label") == NOT_A_DIGIT:
        label = None  # stored as such: out of digit fine-tuning, a non-digit for the rejection rule
    else:
        label = _whole_number(
            req.fields, "label", 'a digit from 0 to 9, or "not a digit"', required=True, most=9
        )
    predicted = _whole_number(req.fields, "predicted", "a digit from 0 to 9 or null", most=9)
    position = _whole_number(
        req.fields, "position", "a whole number from 0 (which digit of the number, from the left)"
    )
    store = get_store()
    learned = False
    try:
        piece, item = None, None
        if position is not None:  # one digit of a number: what the server read there is what is stored
            piece, predicted = _piece(req.sources[0], position)
        else:
            item = preprocess(req.sources[0])  # once, for the store and for this user's memory
        saved = store.save(
            req.sources[0],
            label,
            predicted,
            piece=piece,
            client=request.remote_addr,
            user=req.user,
            item=item,
        )
        stored = store.count()
        if req.user:  # this user's next drawing like it is read as they said
            item = piece.piece if piece is not None else item
            seen = get_predictor().predict_preprocessed([item])[0]
            learned = get_personalizer().remember(req.user, seen, label, corrected=True)
    except PreprocessError as exc:
        refuse(exc)
    except StoreUnavailable:
        current_app.logger.exception("corrections database unavailable")
        abort(503, "the corrections database is unavailable right now: nothing was stored, try again later")
    extra = {"learned": learned} if req.user else {}
    said = NOT_A_DIGIT if label is None else label
    if not saved.new:  # the same drawing and label from this client: kept once
        return jsonify(id=saved.id, label=said, stored=stored, duplicate=True, **extra), 200
    get_metrics().corrections.inc()
    return jsonify(id=saved.id, label=said, stored=stored, **extra), 201


@bp.delete("/users/<user>")
def forget(user: str):
    """Forget a user's handwriting: their memory and their corrections."""
    user = _user(user)
    try:
        removed = get_personalizer().forget(user)
    except StoreUnavailable:
        current_app.logger.exception("corrections database unavailable")
        abort(503, "the corrections database is unavailable right now: nothing was removed, try again later")
    return jsonify(user=user, removed=removed)


@bp.get("/ready")
def ready():
    """Readiness: the model answers. The database is reported, not required: /predict works without it."""
    predictor = get_predictor()
    predictor.predict_preprocessed(
        [preprocess(np.zeros((28, 28), np.float32))]
    )  # the model is loaded and runs
    database = get_store().check()
    return jsonify(status="ready", model=predictor.card.version, database=database)


@bp.get("/metrics")
def metrics():
    return render_metrics()


@bp.get("/health")
def health():
    """Liveness: the process answers."""
    predictor = get_predictor()
    return jsonify(
        status="ok",
        version=__version__,
        model=predictor.card.created,
        explanations="ready",  # "Show why" runs on the served model: ready as soon as it answers
    )


@bp.get("/api/model")
def model_card():
    return jsonify(get_predictor().card.raw)


@bp.get("/openapi.json")
def openapi():
    return jsonify(spec(current_app.config["MAX_BATCH"]))

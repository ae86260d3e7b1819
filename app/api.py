"""JSON API: ``POST /predict``, ``GET /health``, ``GET /api/model``, ``GET /openapi.json``.

Every decision about images lives in ``draw2digit``; this module only turns HTTP
into library calls and library errors into status codes.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import BadRequest

from app.openapi import spec
from draw2digit import __version__
from draw2digit.predictor import Prediction
from draw2digit.preprocess import (
    ImageTooLargeError,
    InvalidImageError,
    PreprocessError,
    UnsupportedImageError,
    decode_image_text,
    preprocess,
)

bp = Blueprint("api", __name__)

#: Raw-body content types we accept (the formats preprocess decodes).
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/jpg", "image/webp", "image/bmp", "image/gif"})
STATUS = {InvalidImageError: 400, UnsupportedImageError: 415, ImageTooLargeError: 413}
MODES = ("digit", "number")


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@bp.errorhandler(ApiError)
def api_error(exc: ApiError):
    return jsonify(error=exc.message), exc.status


def _status_of(exc: PreprocessError) -> int:
    return next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)


def _decoded(text: str, where: str = "") -> bytes:
    """Text from a client is a data URL or base64, never a server path."""
    try:
        return decode_image_text(text)
    except PreprocessError as exc:
        raise ApiError(_status_of(exc), f"{where}{exc}") from None


def _mode(value: Any) -> str:
    """Checked where the request is read, before any image is decoded."""
    if value not in MODES:
        raise ApiError(400, f"'mode' must be one of {', '.join(MODES)}")
    return value


def _is_json() -> bool:
    return request.mimetype == "application/json" or (not request.mimetype and bool(request.content_length))


def _json_object(example: str) -> dict:
    try:
        body = request.get_json(force=True)
    except BadRequest:
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"the JSON body must be an object, e.g. {example}")
    return body


def _uploaded_image() -> bytes:
    upload = request.files.get("image")
    if upload is None:
        raise ApiError(400, "missing file field 'image' in the form")
    return upload.read()


def _read_request() -> tuple[list[Any], bool, dict]:
    """(image sources, is_batch, options) from a JSON, multipart or raw-image request."""
    mimetype = request.mimetype
    if _is_json():
        body = _json_object('{"image": "data:image/png;base64,..."}')
        options = {
            "return_input": body.get("return_input", False),
            "explain": body.get("explain", False),
            "mode": _mode(body.get("mode", "digit")),
        }
        for flag in ("return_input", "explain"):
            if not isinstance(options[flag], bool):
                raise ApiError(400, f"'{flag}' must be true or false")
        if "images" in body:
            images = body["images"]
            if not isinstance(images, list) or not images:
                raise ApiError(400, "'images' must be a non-empty list of image strings")
            limit = current_app.config["MAX_BATCH"]
            if len(images) > limit:
                raise ApiError(400, f"at most {limit} images per request, got {len(images)}")
            for i, item in enumerate(images):
                if not isinstance(item, str):
                    raise ApiError(400, f"images[{i}] must be a string (data URL or base64)")
            return [_decoded(item, f"images[{i}]: ") for i, item in enumerate(images)], True, options
        if "image" not in body:
            raise ApiError(400, "missing field 'image' (a data URL or base64 string)")
        if not isinstance(body["image"], str):
            raise ApiError(400, "'image' must be a string (data URL or base64)")
        return [_decoded(body["image"])], False, options
    if mimetype == "multipart/form-data":
        mode = _mode(request.form.get("mode", request.args.get("mode", "digit")))
        return [_uploaded_image()], False, {"mode": mode}
    if mimetype in IMAGE_TYPES:
        mode = _mode(request.args.get("mode", "digit"))
        data = request.get_data(cache=False)
        if not data:
            raise ApiError(400, "the request body is empty")
        return [data], False, {"mode": mode}
    if not mimetype:
        raise ApiError(400, "the request has no body")
    raise ApiError(
        415,
        f"unsupported content type {mimetype!r}: send application/json, multipart/form-data "
        "or an image (image/png, image/jpeg, image/webp, image/bmp, image/gif)",
    )


def _as_json(pred: Prediction, options: dict) -> dict:
    out = pred.to_dict()
    if options.get("return_input"):
        out["input"] = [[round(float(v), 3) for v in row] for row in pred.image]
    if options.get("explain"):
        from draw2digit.explain import overlay_data_url

        saliency = current_app.extensions["draw2digit.predictor"].saliency(pred)
        out["saliency"] = [[round(float(v), 3) for v in row] for row in saliency]
        out["saliency_png"] = overlay_data_url(pred.image, saliency)
    return out


def _predict_numbers(sources: list, batch: bool) -> list[dict]:
    predictor = current_app.extensions["draw2digit.predictor"]
    results = []
    for i, source in enumerate(sources):
        try:
            results.append(predictor.predict_number(source).to_dict())
        except PreprocessError as exc:
            where = f"images[{i}]: " if batch else ""
            raise ApiError(_status_of(exc), f"{where}{exc}") from None
    return results


@bp.post("/predict")
def predict():
    sources, batch, options = _read_request()
    if options["mode"] == "number":
        numbers = _predict_numbers(sources, batch)
        return jsonify(predictions=numbers) if batch else jsonify(numbers[0])
    items = []
    for i, source in enumerate(sources):
        try:
            items.append(preprocess(source))
        except PreprocessError as exc:
            where = f"images[{i}]: " if batch else ""
            raise ApiError(_status_of(exc), f"{where}{exc}") from None
    predictions = current_app.extensions["draw2digit.predictor"].predict_preprocessed(items)
    results = [_as_json(p, options) for p in predictions]
    return jsonify(predictions=results) if batch else jsonify(results[0])


def _digit_field(body: dict, name: str, required: bool) -> int | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)  # form fields arrive as text
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 9:
        raise ApiError(400, f"'{name}' must be a digit from 0 to 9" + ("" if required else " or null"))
    return value


@bp.post("/feedback")
def feedback():
    """Store a correction: the drawing and the digit it really is."""
    if request.mimetype == "multipart/form-data":
        source, body = _uploaded_image(), request.form
    elif _is_json():
        body = _json_object('{"image": "...", "label": 3}')
        if not isinstance(body.get("image"), str):
            raise ApiError(
                400,
                "'image' must be a string (data URL or base64)"
                if "image" in body
                else "missing field 'image' (a data URL or base64 string)",
            )
        source = _decoded(body["image"])
    elif not request.mimetype:
        raise ApiError(400, "the request has no body")
    else:
        raise ApiError(415, f"unsupported content type {request.mimetype!r}: send application/json or a form")
    if "label" not in body:
        raise ApiError(400, "missing field 'label' (the digit the drawing really is)")
    label = _digit_field(body, "label", required=True)
    predicted = _digit_field(body, "predicted", required=False)
    store = current_app.extensions["draw2digit.feedback"]
    try:
        new_id = store.add(source, label, predicted)
    except PreprocessError as exc:
        raise ApiError(_status_of(exc), str(exc)) from None
    return jsonify(id=new_id, label=label, stored=store.count()), 201


@bp.get("/health")
def health():
    predictor = current_app.extensions["draw2digit.predictor"]
    return jsonify(status="ok", version=__version__, model=predictor.card.get("created"))


@bp.get("/api/model")
def model_card():
    predictor = current_app.extensions["draw2digit.predictor"]
    return jsonify(predictor.card)


@bp.get("/openapi.json")
def openapi():
    return jsonify(spec(current_app.config["MAX_BATCH"]))

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from draw2digit.canvas import to_png
from draw2digit.training.synthetic import digit_drawing

PNG7 = to_png(digit_drawing(7))
B64_7 = base64.b64encode(PNG7).decode()
DATA_URL_7 = "data:image/png;base64," + B64_7
BLANK = to_png(Image.new("RGBA", (280, 280), (0, 0, 0, 0)))


def _still_answers(client):
    r = client.post("/predict", json={"image": DATA_URL_7})
    assert r.status_code == 200 and r.get_json()["digit"] == 7


def _is_prediction(body: dict):
    assert set(body) >= {"digit", "confidence", "probabilities", "blank"}
    assert len(body["probabilities"]) == 10
    assert abs(sum(body["probabilities"]) - (0 if body["blank"] else 1)) < 1e-3


def test_predict_data_url(client):
    r = client.post("/predict", json={"image": DATA_URL_7})
    assert r.status_code == 200 and r.is_json
    body = r.get_json()
    _is_prediction(body)
    assert body["digit"] == 7 and body["blank"] is False and body["confidence"] > 0.5
    assert "input" not in body


def test_predict_bare_base64_without_padding(client):
    r = client.post("/predict", json={"image": B64_7.rstrip("=")})
    assert r.status_code == 200 and r.get_json()["digit"] == 7


def test_predict_returns_the_28x28_input_when_asked(client):
    body = client.post("/predict", json={"image": DATA_URL_7, "return_input": True}).get_json()
    assert len(body["input"]) == 28 and all(len(row) == 28 for row in body["input"])
    assert max(max(row) for row in body["input"]) == pytest.approx(1.0)


def test_blank_drawing(client):
    body = client.post("/predict", json={"image": base64.b64encode(BLANK).decode()}).get_json()
    assert body == {
        "digit": None,
        "confidence": 0.0,
        "probabilities": [0.0] * 10,
        "blank": True,
        "rejected": False,
        "reason": None,
    }


def test_multipart_upload(client):
    r = client.post(
        "/predict", data={"image": (io.BytesIO(PNG7), "seven.png")}, content_type="multipart/form-data"
    )
    assert r.status_code == 200 and r.get_json()["digit"] == 7


@pytest.mark.parametrize("ctype", ["image/png", "image/jpeg"])
def test_raw_image_body(client, ctype):
    flat = Image.new("RGB", (280, 280), "white")
    drawing = digit_drawing(4)
    flat.paste(drawing, mask=drawing.getchannel("A"))
    buf = io.BytesIO()
    flat.save(buf, format="PNG" if ctype == "image/png" else "JPEG")
    r = client.post("/predict", data=buf.getvalue(), content_type=ctype)
    assert r.status_code == 200 and r.get_json()["digit"] == 4


def test_batch(client):
    images = [base64.b64encode(to_png(digit_drawing(d))).decode() for d in (1, 2, 3)] + [
        base64.b64encode(BLANK).decode()
    ]
    r = client.post("/predict", json={"images": images})
    assert r.status_code == 200
    preds = r.get_json()["predictions"]
    assert [p["digit"] for p in preds] == [1, 2, 3, None]
    for p in preds:
        _is_prediction(p)


def _bomb() -> bytes:
    import struct
    import zlib

    png = bytearray(to_png(Image.new("L", (1, 1))))
    ihdr = struct.pack(">II", 40000, 40000) + bytes(png[24:29])
    png[16:29] = ihdr
    png[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(png)


def _tiff() -> bytes:
    buf = io.BytesIO()
    digit_drawing(3).save(buf, format="TIFF")
    return buf.getvalue()


BAD_REQUESTS = {
    "malformed JSON": (dict(data="{not json", content_type="application/json"), 400, "JSON"),
    "JSON array": (dict(json=[1, 2]), 400, "object"),
    "JSON null": (dict(data="null", content_type="application/json"), 400, "object"),
    "missing field": (dict(json={"picture": DATA_URL_7}), 400, "'image'"),
    "image is a number": (dict(json={"image": 42}), 400, "string"),
    "image is null": (dict(json={"image": None}), 400, "string"),
    "empty image": (dict(json={"image": ""}), 400, "empty"),
    "bad base64": (dict(json={"image": "@@@@not-base64@@@@"}), 400, "base64"),
    "base64 of text": (dict(json={"image": base64.b64encode(b"hello world").decode()}), 400, "image"),
    "data URL of text": (dict(json={"image": "data:text/plain;base64,aGVsbG8="}), 415, "not an image"),
    "truncated PNG": (dict(json={"image": base64.b64encode(PNG7[:300]).decode()}), 400, "corrupt"),
    "TIFF": (dict(json={"image": base64.b64encode(_tiff()).decode()}), 415, "TIFF"),
    "decompression bomb": (dict(json={"image": base64.b64encode(_bomb()).decode()}), 413, "pixels"),
    "return_input not bool": (dict(json={"image": DATA_URL_7, "return_input": "yes"}), 400, "return_input"),
    "images not a list": (dict(json={"images": DATA_URL_7}), 400, "list"),
    "images empty": (dict(json={"images": []}), 400, "non-empty"),
    "images with a number": (dict(json={"images": [DATA_URL_7, 5]}), 400, "images[1]"),
    "images with bad base64": (dict(json={"images": [DATA_URL_7, "%%%"]}), 400, "images[1]"),
    "too many images": (dict(json={"images": [DATA_URL_7] * 33}), 400, "at most 32"),
    "multipart without file": (dict(data={"other": "x"}, content_type="multipart/form-data"), 400, "'image'"),
    "multipart garbage file": (
        dict(data={"image": (io.BytesIO(b"garbage"), "x.png")}, content_type="multipart/form-data"),
        400,
        "not an image",
    ),
    "raw garbage png": (dict(data=b"garbage", content_type="image/png"), 400, "not an image"),
    "raw empty png": (dict(data=b"", content_type="image/png"), 400, "empty"),
    "raw TIFF": (dict(data=_tiff(), content_type="image/tiff"), 415, "content type"),
    "text/plain": (dict(data="7", content_type="text/plain"), 415, "content type"),
    "no body": (dict(), 400, "no body"),
    "body too large": (dict(data=b"x" * (5 * 1024 * 1024), content_type="image/png"), 413, "larger than"),
    "JSON too large": (dict(json={"image": "A" * (5 * 1024 * 1024)}), 413, "larger than"),
}


@pytest.mark.parametrize("name", BAD_REQUESTS)
def test_bad_input_gets_a_clear_json_error(client, name):
    kwargs, status, words = BAD_REQUESTS[name]
    r = client.post("/predict", **kwargs)
    assert r.status_code == status, (name, r.status_code, r.data[:200])
    assert r.is_json, "errors are JSON, never an HTML page"
    body = r.get_json()
    assert set(body) == {"error"} and words.lower() in body["error"].lower(), body
    _still_answers(client)


def test_404_and_405_are_json(client):
    r = client.get("/no/such/thing")
    assert r.status_code == 404 and r.is_json and "no such endpoint" in r.get_json()["error"]
    r = client.get("/predict")
    assert r.status_code == 405 and r.is_json and "POST" in r.headers["Allow"]
    r = client.delete("/health")
    assert r.status_code == 405 and r.is_json


def test_unexpected_errors_are_json_500(app, predictor, monkeypatch):
    def broken(items):
        raise RuntimeError("boom")

    monkeypatch.setattr(predictor, "predict_preprocessed", broken)
    r = app.test_client().post("/predict", json={"image": DATA_URL_7})
    assert r.status_code == 500 and r.get_json() == {"error": "internal error; the server logged it"}


def test_health_and_model_card(client):
    r = client.get("/health")
    assert r.status_code == 200 and r.get_json()["status"] == "ok"
    card = client.get("/api/model").get_json()
    assert card["test_accuracy"] >= 0.995 and len(card["test_per_class_accuracy"]) == 10


def test_openapi_document(client):
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    documented = {
        "/predict",
        "/feedback",
        "/users/{user}",
        "/health",
        "/ready",
        "/metrics",
        "/api/model",
        "/openapi.json",
    }
    assert set(doc["paths"]) == documented
    from draw2digit_app import create_app

    routes = {r.rule for r in create_app({"TESTING": True}).url_map.iter_rules()}
    routes = {r.replace("<user>", "{user}") for r in routes}
    assert documented == routes - {"/", "/static/<path:filename>"}, "every API route is documented"
    assert {"200", "400", "413", "415"} <= set(doc["paths"]["/predict"]["post"]["responses"])


def test_page_has_the_test_hooks(client):
    r = client.get("/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    for hook in (
        "draw-canvas",
        "predicted-digit",
        "confidence",
        "probabilities",
        "preview",
        "clear-button",
        "undo-button",
    ):
        assert f'data-testid="{hook}"' in html
    assert client.get("/static/app.js").status_code == 200


def test_config_from_environment(monkeypatch, tmp_path):
    from draw2digit_app import create_app

    monkeypatch.setenv("DRAW2DIGIT_MAX_BATCH", "2")
    app = create_app({"TESTING": True})
    assert app.config["MAX_BATCH"] == 2
    r = app.test_client().post("/predict", json={"images": [DATA_URL_7] * 3})
    assert r.status_code == 400 and "at most 2" in r.get_json()["error"]
    assert (
        json.loads(app.test_client().get("/openapi.json").data)["components"]["schemas"]["BatchRequest"][
            "properties"
        ]["images"]["maxItems"]
        == 2
    )


@pytest.mark.parametrize("relative", [True, False])
def test_image_strings_are_never_read_as_server_files(client, relative):
    """A string naming an image file on the server is refused: read, it would give a digit (200)."""
    from tests.conftest import ROOT

    image = ROOT / "examples" / "0_canvas.png"
    path = "examples/0_canvas.png" if relative else str(image)
    assert image.is_file()
    for endpoint, body in (("/predict", {"image": path}), ("/feedback", {"image": path, "label": 3})):
        r = client.post(endpoint, json=body)
        assert r.status_code == 400 and r.is_json, (endpoint, path, r.get_json())


@pytest.mark.parametrize("opener, closer", [("[", "]"), ('{"a":', "}")])
def test_deeply_nested_json_is_a_clear_400(client, opener, closer):
    body = opener * 100_000 + "1" + closer * 100_000
    for endpoint in ("/predict", "/feedback"):
        r = client.post(endpoint, data=body, content_type="application/json")
        assert r.status_code == 400 and r.is_json and "nested" in r.get_json()["error"], endpoint

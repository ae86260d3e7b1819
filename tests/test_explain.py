"""The saliency view is computed from the model: it follows the input and sits on the ink."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from draw2digit.canvas import to_png
from draw2digit.explain import overlay_png
from draw2digit.training.synthetic import digit_drawing


@pytest.fixture(scope="module")
def maps(predictor):
    out = {}
    for d in (0, 1, 7):
        pred = predictor.predict(digit_drawing(d))
        out[d] = (pred, predictor.saliency(pred))
    return out


def test_saliency_highlights_the_ink(maps):
    for d, (pred, saliency) in maps.items():
        assert saliency.shape == (28, 28) and saliency.max() == pytest.approx(1.0)
        near_ink = ndimage.binary_dilation(pred.image > 0.1, iterations=1)
        assert saliency[near_ink].sum() / saliency.sum() > 0.8, d


def test_saliency_changes_with_the_input(maps):
    (_, a), (_, b) = maps[0], maps[1]
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] < 0.5


def test_saliency_depends_on_the_class_explained(predictor, maps):
    pred, saliency = maps[7]
    other = predictor._explainer.saliency(pred.image, 1)
    assert not np.allclose(saliency, other, atol=0.05)


def test_blank_has_no_saliency(predictor):
    blank = predictor.predict(Image.new("RGBA", (50, 50)))
    assert not predictor.saliency(blank).any()


def test_overlay_png(maps):
    pred, saliency = maps[7]
    im = Image.open(io.BytesIO(overlay_png(pred.image, saliency)))
    assert im.size == (112, 112) and im.mode == "RGB"


def test_api_explain(client):
    body = {"image": base64.b64encode(to_png(digit_drawing(4))).decode(), "explain": True}
    data = client.post("/predict", json=body).get_json()
    assert data["digit"] == 4
    assert len(data["saliency"]) == 28 and max(max(r) for r in data["saliency"]) == pytest.approx(1.0)
    png = base64.b64decode(data["saliency_png"].split(",", 1)[1])
    assert Image.open(io.BytesIO(png)).size == (112, 112)
    r = client.post("/predict", json={"image": body["image"], "explain": "yes"})
    assert r.status_code == 400 and "explain" in r.get_json()["error"]

"""Weight averaging of a fine-tuned model with its base (draw2digit.blend) and its CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from draw2digit.blend import Candidate, blended_weights, choose
from draw2digit.cli import main
from tests.conftest import MODELS


def _pair(rng):
    """Weights shaped like a small network: a conv kernel, a bias, and a 10- or 11-class head."""
    tuned = [rng.normal(size=(3, 3, 1, 4)), rng.normal(size=4), rng.normal(size=(8, 11)), rng.normal(size=11)]
    base = [rng.normal(size=(3, 3, 1, 4)), rng.normal(size=4), rng.normal(size=(8, 10)), rng.normal(size=10)]
    return [w.astype(np.float32) for w in tuned], [w.astype(np.float32) for w in base]


def test_blend_is_the_weighted_mean_and_keeps_the_tuned_not_a_digit_column(rng):
    tuned, base = _pair(rng)
    mixed = blended_weights(tuned, base, 0.3)
    np.testing.assert_allclose(mixed[0], 0.3 * tuned[0] + 0.7 * base[0], rtol=1e-6)
    np.testing.assert_allclose(mixed[2][:, :10], 0.3 * tuned[2][:, :10] + 0.7 * base[2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mixed[2][:, 10], tuned[2][:, 10], rtol=1e-6)
    np.testing.assert_allclose(mixed[3][10], tuned[3][10], rtol=1e-6)
    at_zero = blended_weights(tuned, base, 0.0)
    np.testing.assert_array_equal(at_zero[1], base[1])
    np.testing.assert_array_equal(blended_weights(tuned, base, 1.0)[2], tuned[2])
    assert all(m.dtype == np.float32 for m in mixed)


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_blend_weight_outside_zero_to_one_is_refused(rng, weight):
    tuned, base = _pair(rng)
    with pytest.raises(ValueError, match="between 0 and 1"):
        blended_weights(tuned, base, weight)


def test_blend_of_unrelated_networks_is_refused(rng):
    tuned, base = _pair(rng)
    with pytest.raises(ValueError, match="different layers"):
        blended_weights(tuned, base[:3], 0.5)
    with pytest.raises(ValueError, match="cannot be blended"):
        blended_weights([tuned[0], tuned[1], np.zeros((9, 11)), tuned[3]], base, 0.5)


def test_choose_takes_the_most_non_digits_among_blends_that_keep_mnist():
    base = 0.9964
    cands = [
        Candidate(0.5, 0.9966, 0.997, 0.941),
        Candidate(0.7, 0.9960, 1.0, 0.972),  # within the tolerance of the base
        Candidate(0.9, 0.9952, 1.0, 0.977),  # rejects more, but loses MNIST
    ]
    assert choose(cands, base).weight == 0.7
    assert choose(cands, base + 0.01).weight == 0.5, "none keeps MNIST: the closest"
    assert choose(cands, 0.99).weight == 0.9, "all keep MNIST: the most rejected"
    tie = [Candidate(0.6, 0.997, 0.99, 0.9), Candidate(0.8, 0.997, 0.995, 0.9)]
    assert choose(tie, 0.997).weight == 0.8, "a tie goes to the better reader of the tuning writers"
    with pytest.raises(ValueError):
        choose([], base)


def test_blend_end_to_end_writes_a_servable_model_with_its_card(tmp_path, rng):
    """Two small networks (10 and 11 classes) blended on injected tuning sets."""
    from draw2digit.artifacts import save_model
    from draw2digit.blend import blend
    from draw2digit.data import Split
    from draw2digit.model import build_model, load_keras
    from draw2digit.predictor import Predictor

    base, tuned = build_model(width=4, classes=10), build_model(width=4, classes=11)
    save_model(base, tmp_path / "base", {"version": "base-1"})
    save_model(tuned, tmp_path / "tuned", {"version": "tuned-1", "config": {"seed": 42}}, quantize=True)
    images = rng.random((40, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, 40)
    sets = ((images, labels), (images[:20], labels[:20]), images[20:])
    test = Split((images * 255).astype(np.uint8), labels)
    lines: list[str] = []
    pair = (tmp_path / "tuned", tmp_path / "base")
    card = blend(*pair, tmp_path / "out", (0.4, 0.6), sets=sets, test_split=test, log=lines.append)
    b = card["blend"]
    assert b["weight"] in (0.4, 0.6) and [c["weight"] for c in b["candidates"]] == [0.4, 0.6]
    assert b["tuned_version"] == "tuned-1" and b["base_version"] == "base-1"
    assert card["version"].startswith("tuned-1+blend.") and 0 <= card["test_accuracy"] <= 1
    assert len(lines) == 3 and lines[-1].startswith(f"chosen: {b['weight']:.2f}")
    saved = load_keras(tmp_path / "out" / "model.keras").get_weights()
    expected = blended_weights(tuned.get_weights(), base.get_weights(), b["weight"])
    for s, e in zip(saved, expected, strict=True):
        np.testing.assert_allclose(s, e, rtol=1e-6)
    assert json.loads((tmp_path / "out" / "model_card.json").read_text())["blend"]["weight"] == b["weight"]
    out = Predictor(tmp_path / "out").outputs(images[:3])
    assert out.probabilities.shape == (3, 10) and out.not_digit.shape == (3,)
    on_disk = json.loads((tmp_path / "out" / "model_card.json").read_text())
    assert on_disk["litert_weights"].startswith("int8"), "served as the fine-tune it blends was"


@pytest.mark.parametrize(
    ("weights", "message"), [("0.5,x", "numbers like"), ("1.2", "0 to 1"), (",", "0 to 1")]
)
def test_cli_blend_refuses_bad_weights(capsys, tmp_path, weights, message):
    args = ["blend", str(MODELS), "--base", str(MODELS / "mnist-only"), "--out", str(tmp_path)]
    code = main([*args, "--weights", weights])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_cli_blend_names_a_missing_model(capsys, tmp_path):
    args = ["blend", str(tmp_path / "none"), "--base", str(MODELS / "mnist-only"), "--out", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "no model at" in err and "Traceback" not in err


def test_cli_blend_never_replaces_a_model_without_force(capsys, tmp_path):
    (tmp_path / "model.keras").write_bytes(b"a model someone trained")
    args = ["blend", str(MODELS), "--base", str(MODELS / "mnist-only"), "--out", str(tmp_path)]
    assert main(args) == 2
    assert "pass --force" in capsys.readouterr().err
    assert (tmp_path / "model.keras").read_bytes() == b"a model someone trained"

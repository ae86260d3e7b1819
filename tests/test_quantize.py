"""int8 weights for serving (`draw2digit quantize`, `train --quantize`): smaller, answers a little off."""

from __future__ import annotations

import numpy as np
import pytest

from draw2digit.artifacts import is_quantized, read_model_card
from draw2digit.cli import main
from draw2digit.predictor import Predictor
from draw2digit.training import data
from tests.conftest import MODELS

pytestmark = pytest.mark.training  # loads and exports Keras models


@pytest.fixture(scope="module")
def pair(tmp_path_factory, mnist_dir):
    """The shipped network saved with float LiteRT weights, and `draw2digit quantize` of that copy.

    Built from the Keras file, so the test holds whichever LiteRT weights models/ ships.
    """
    from draw2digit.training.export import save_model
    from draw2digit.training.model import load_keras

    tmp = tmp_path_factory.mktemp("q")
    card = {k: v for k, v in read_model_card(MODELS).items() if k != "litert_weights"}
    card["test_accuracy"] = card.pop("keras_test_accuracy", card["test_accuracy"])  # the float network's
    save_model(load_keras(MODELS / "model.keras"), tmp / "float", card)
    (tmp / "float" / "training_history.png").write_bytes((MODELS / "training_history.png").read_bytes())
    with pytest.MonkeyPatch.context() as mp:  # quantize scores the int8 copy on the MNIST test set
        mp.setenv(data.ENV_DATA_DIR, str(mnist_dir))
        assert main(["quantize", str(tmp / "float"), "--out", str(tmp / "int8")]) == 0
    return tmp / "float", tmp / "int8"


def test_quantized_copy_is_smaller_marked_and_left_to_calibrate(pair, mnist_test):
    floating, quantized = pair
    assert (quantized / "model.tflite").stat().st_size < 0.4 * (floating / "model.tflite").stat().st_size
    card = read_model_card(quantized)
    assert is_quantized(card) and not is_quantized(read_model_card(floating))
    assert card["keras_test_accuracy"] == read_model_card(floating)["test_accuracy"], "the same Keras weights"
    read = Predictor(quantized).probabilities(mnist_test.images / 255.0, calibrated=False).argmax(1)
    assert card["test_accuracy"] == (read == mnist_test.labels).mean(), "the MNIST figure of the int8 copy"
    assert card["test_per_class_accuracy"]["9"] == (read[mnist_test.labels == 9] == 9).mean()
    assert (quantized / "training_history.png").is_file() and (quantized / "model.keras").is_file()
    assert not (quantized / "calibration.json").exists(), "thresholds fitted on the float model's answers"


def test_quantized_model_reads_like_the_float_one(pair, mnist_test):
    floating, quantized = pair
    x = mnist_test.images[:500].astype(np.float32) / 255
    fast, ref = Predictor(quantized).outputs(x), Predictor(floating).outputs(x)
    assert fast.probabilities.shape == ref.probabilities.shape == (500, 10)
    agree = (fast.probabilities.argmax(1) == ref.probabilities.argmax(1)).mean()
    assert agree >= 0.99, agree
    assert np.abs(fast.probabilities - ref.probabilities).max() < 0.2
    assert np.abs(fast.probabilities - ref.probabilities).max() > 0, "int8 weights are not the float ones"
    assert np.corrcoef(fast.not_digit, ref.not_digit)[0, 1] > 0.95, "the eleventh class survives"


def test_quantize_refuses_what_it_cannot_do(tmp_path, capsys):
    assert main(["quantize", str(MODELS / "heldout-twin"), "--out", str(tmp_path / "q")]) == 2
    assert "model.keras" in capsys.readouterr().err, "the twin ships only the LiteRT copy"
    assert main(["quantize", str(MODELS), "--out", str(MODELS)]) == 2
    assert "another folder" in capsys.readouterr().err
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "model.keras").write_bytes(b"x")
    assert main(["quantize", str(MODELS), "--out", str(tmp_path / "taken")]) == 2
    assert "--force" in capsys.readouterr().err


def test_quantize_a_model_whose_card_has_no_figures(tmp_path, mnist_dir, capsys):
    from draw2digit.training.export import save_model
    from draw2digit.training.model import build_model

    save_model(build_model(width=4, classes=10), tmp_path / "bare", {})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(data.ENV_DATA_DIR, str(mnist_dir))
        assert main(["quantize", str(tmp_path / "bare"), "--out", str(tmp_path / "q")]) == 0
    card = read_model_card(tmp_path / "q")
    assert "keras_test_accuracy" not in card and 0 <= card["test_accuracy"] <= 1
    out = capsys.readouterr().out
    assert "MNIST test" in out and ", float " not in out

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from draw2digit.artifacts import read_model_card
from draw2digit.training.config import TrainConfig
from draw2digit.training.data import Split, split_train_validation
from draw2digit.training.renders import NOT_A_DIGIT, extra_training_data
from draw2digit.training.train import random_affine, train


def test_split_is_seeded_and_disjoint(mnist_test):
    a_tr, a_va = split_train_validation(mnist_test, 1000, seed=3)
    _, b_va = split_train_validation(mnist_test, 1000, seed=3)
    assert len(a_va.labels) == 1000 and len(a_tr.labels) == 9000
    np.testing.assert_array_equal(a_va.labels, b_va.labels)
    c_tr, _ = split_train_validation(mnist_test, 1000, seed=4)
    assert not np.array_equal(a_tr.labels, c_tr.labels)


@pytest.mark.training
def test_augmentation_moves_ink_but_keeps_it_on_the_canvas(mnist_test):
    import tensorflow as tf

    x = tf.constant(mnist_test.images[:256, ..., None].astype("float32") / 255)
    y = random_affine(x, TrainConfig(), seed=7).numpy()
    assert y.shape == x.shape
    changed = np.abs(y - x.numpy()).mean(axis=(1, 2, 3))
    assert (changed > 0.01).mean() > 0.9, "nearly every image is transformed"
    kept = y.sum(axis=(1, 2, 3)) / x.numpy().sum(axis=(1, 2, 3))
    assert np.median(kept) > 0.85 and kept.min() > 0.5, "ink stays on the canvas"
    np.testing.assert_array_equal(y, random_affine(x, TrainConfig(), seed=7).numpy())  # seeded


@pytest.mark.training
def test_extra_shapes_change_the_non_digits_and_the_card_says_so():
    _, plain, card = extra_training_data(TrainConfig(non_digits=36))
    _, wider, wider_card = extra_training_data(TrainConfig(non_digits=36, extra_shapes=True))
    assert card["non_digits"]["extra_shapes"] is False and wider_card["non_digits"]["extra_shapes"] is True
    assert not np.array_equal(plain.images[:30], wider.images[:30])


@pytest.mark.training
def test_mnist_class_weights_weigh_only_mnist_rows_of_those_digits():
    import tensorflow as tf

    from draw2digit.training.train import make_dataset, mnist_row_weights

    # Four MNIST rows, then a pen 7 and a non-digit: only MNIST's 7 and 9 move.
    labels = np.array([7, 9, 1, 7, 7, NOT_A_DIGIT], np.uint8)
    config = TrainConfig(batch_size=6, augment=False, mnist_class_weights=((7, 3.0), (9, 2.0)))
    weights = mnist_row_weights(labels, 4, config)
    np.testing.assert_array_equal(weights, [3, 2, 1, 3, 1, 1])

    images = np.random.default_rng(0).integers(0, 255, (6, 28, 28), np.uint8)
    split = Split(images, labels)
    _, y, w = next(iter(make_dataset(split, config, training=False, classes=11, row_weights=weights)))
    np.testing.assert_array_equal(y.numpy(), labels)
    np.testing.assert_allclose(w.numpy(), weights)

    def teacher(x, training=False):
        return tf.one_hot(tf.fill([tf.shape(x)[0]], 0), 10)

    taught = np.arange(6) < 4
    kwargs = {"teacher": teacher, "taught": taught, "row_weights": weights}
    _, target, w = next(iter(make_dataset(split, config, training=False, classes=11, **kwargs)))
    np.testing.assert_allclose(target.numpy()[0, [0, 7]], [0.5, 0.5])  # the teacher still speaks
    np.testing.assert_allclose(w.numpy(), weights)


@pytest.mark.training
def test_pen_perturb_strength_reaches_the_drawings_and_the_card(pen_digits):
    base = TrainConfig(pen_copies=1, pen_writers=(1,))
    pen, _, card = extra_training_data(base)
    bent, _, bent_card = extra_training_data(TrainConfig(pen_copies=1, pen_writers=(1,), pen_perturb=2.0))
    assert (
        card["pen_digits"]["perturb_strength"] == 1.0 and bent_card["pen_digits"]["perturb_strength"] == 2.0
    )
    np.testing.assert_array_equal(pen.labels, bent.labels)
    assert not np.array_equal(pen.images, bent.images)


@pytest.mark.training
def test_cut_pieces_join_the_pen_digits_and_the_card_counts_them(pen_digits):
    pen, _, card = extra_training_data(TrainConfig(pen_copies=1, pen_writers=(1,)))
    cut, _, cut_card = extra_training_data(TrainConfig(pen_copies=1, pen_writers=(1,), cut_pieces=20))
    added = cut_card["pen_digits"]["cut_pieces"]
    assert "cut_pieces" not in card["pen_digits"] and added["pairs"] == 20 and added["pieces"] > 0
    assert len(cut.labels) == len(pen.labels) + added["pieces"]
    np.testing.assert_array_equal(cut.images[: len(pen.labels)], pen.images)


def test_a_second_run_of_the_same_classes_continues_its_parents_history(tmp_path):
    """Stage two (``--init-from`` stage one) plots both runs; an eleven-class run grown from a
    ten-class model starts afresh."""
    from draw2digit.training.history import parent_history, plot_history

    parent = tmp_path / "stage1"
    parent.mkdir()
    (parent / "model.keras").write_bytes(b"weights")
    (parent / "model_card.json").write_text(json.dumps({"classes": 11}))
    (parent / "history.csv").write_text(
        "epoch,accuracy,loss,val_accuracy,val_loss\n0,0.95,0.2,0.97,0.1\n1,0.97,0.1,0.98,0.08\n"
    )
    earlier = parent_history(str(parent), 11)
    assert earlier["loss"] == [0.2, 0.1] and earlier["val_accuracy"] == [0.97, 0.98]
    assert parent_history(str(parent), 10) == {} and parent_history(None, 11) == {}
    later = {"accuracy": [0.98], "loss": [0.05], "val_accuracy": [0.99], "val_loss": [0.04]}
    both, alone = tmp_path / "both.png", tmp_path / "alone.png"
    plot_history(earlier, both, then=later)
    plot_history({}, alone, then=later)
    assert both.stat().st_size > 0 and alone.stat().st_size > 0
    assert both.read_bytes() != alone.read_bytes()


@pytest.mark.slow
def test_training_end_to_end_on_a_subset(mnist_test, tmp_path):
    small = Split(mnist_test.images[:3000], mnist_test.labels[:3000])
    held = Split(mnist_test.images[9000:], mnist_test.labels[9000:])
    config = TrainConfig(
        epochs=3, limit=2400, validation_size=500, width=8, batch_size=64, learning_rate=3e-3, warmup_epochs=0
    )
    card = train(config, tmp_path, verbose=0, train_split=small, test_split=held)
    for name in ("model.keras", "model.tflite", "model_card.json", "training_history.png", "history.csv"):
        assert (tmp_path / name).stat().st_size > 0, name
    on_disk = json.loads((tmp_path / "model_card.json").read_text())
    assert on_disk["epochs"] == 3 and on_disk["config"]["width"] == 8
    assert on_disk["litert_weights"] == "float32" and not on_disk["config"]["quantize"]
    assert set(on_disk["data"]["sha256"]) == {
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    }
    assert len(on_disk["test_per_class_accuracy"]) == 10
    assert card["test_accuracy"] > 0.6, "three short epochs learn digits (chance is 0.1)"
    assert not (tmp_path / "backup").exists()


@pytest.mark.parametrize("steps", [1, 4, 19, 20, 100, 1000, 100_000])
def test_batch_norm_momentum_is_a_valid_average_that_settles_within_the_run(steps):
    from draw2digit.training.train import batch_norm_momentum

    momentum = batch_norm_momentum(steps)
    assert 0.5 <= momentum <= 0.99
    if steps >= 20:  # long enough: the averages span at most a tenth of the run
        assert 1 / (1 - momentum) <= max(steps / 10, 2) + 1e-9


@pytest.mark.training
def test_a_run_of_a_few_steps_from_scratch_validates_with_finite_loss(mnist_test, tmp_path):
    """Four steps once gave batch norm a negative momentum: a negative moving variance, NaN answers."""
    small = Split(mnist_test.images[:700], mnist_test.labels[:700])
    config = TrainConfig(epochs=1, limit=512, validation_size=64, batch_size=128, warmup_epochs=0)
    train(config, tmp_path, verbose=0, train_split=small, test_split=small)
    with (tmp_path / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and all(np.isfinite(float(row["val_loss"])) for row in rows)


def _one_gentle_epoch(mnist_test, tmp_path, **config):
    """One epoch at a low rate on 1,500 MNIST images: the card, and the 1,000 images it was tested on."""
    small = Split(mnist_test.images[:2000], mnist_test.labels[:2000])
    held = Split(mnist_test.images[9000:], mnist_test.labels[9000:])
    settings = {"epochs": 1, "limit": 1500, "validation_size": 300, "learning_rate": 1e-4, "warmup_epochs": 0}
    card = train(TrainConfig(**settings, **config), tmp_path, verbose=0, train_split=small, test_split=held)
    return card, held


@pytest.mark.slow
def test_pen_digits_not_a_digit_and_a_teacher(mnist_test, tmp_path, pen_digits):
    """The shipped recipe in miniature: MNIST + real pen digits + an eleventh class, from a teacher."""
    from draw2digit.artifacts import is_quantized
    from draw2digit.predictor import Predictor
    from draw2digit.training import pendigits
    from tests.conftest import MODELS

    card, held = _one_gentle_epoch(
        mnist_test,
        tmp_path,
        pen_copies=1,
        pen_writers=(1,),
        non_digits=60,
        init_from=str(MODELS),
        distill_from=str(MODELS),
        mnist_class_weights=((7, 2.0),),
        quantize=True,
    )
    assert card["classes"] == 11 and card["config"]["mnist_class_weights"] == [[7, 2.0]]
    assert read_model_card(tmp_path)["litert_weights"].startswith("int8"), "served with int8 weights"
    floating = MODELS / "mnist-only"  # the same width with float weights (the shipped copy is int8 itself)
    assert not is_quantized(read_model_card(floating))
    assert (tmp_path / "model.tflite").stat().st_size < 0.4 * (floating / "model.tflite").stat().st_size
    pen = card["data"]["pen_digits"]
    own = len(pendigits.by_writers(pen_digits, [1]))  # writer 1 wrote 249
    assert pen["writers"] == [1] and pen["digits"] == own == pen["augmented_drawings"] == 249
    assert pen["sha256"] and "CC BY 4.0" in pen["dataset"] and set(pen["heldout_writers"]).isdisjoint({1})
    assert card["data"]["non_digits"]["drawings"] >= 55 and card["data"]["non_digits"]["class"] == 10
    assert card["keras_test_accuracy"] > 0.97, "one gentle epoch from the shipped weights keeps MNIST"
    served = Predictor(tmp_path).probabilities(held.images / 255.0, calibrated=False).argmax(1) == held.labels
    assert card["test_accuracy"] == served.mean(), "the card's MNIST figure is the int8 copy's own"
    out = Predictor(tmp_path).outputs(held.images[:50] / 255.0)
    assert out.probabilities.shape == (50, 10) and out.not_digit.shape == (50,)
    np.testing.assert_allclose(out.probabilities.sum(1), 1, atol=1e-5)


def test_a_config_refuses_what_it_cannot_train_before_any_work(tmp_path):
    from draw2digit.training.config import ConfigError

    for bad, message in (
        ({"mnist_class_weights": ((7, 0.0),)}, "weights over 0"),
        ({"cut_pieces": 10}, "cut_pieces shapes the pen digits: it needs pen_copies"),
        ({"extra_shapes": True}, "extra_shapes widens the non-digits"),
        ({"distill_weight": 1.5}, "distill_weight is a share"),
        ({"pen_copies": 1, "pen_writers": (31,)}, "writers are numbered 1 to 30"),
        ({"epochs": 0}, "epochs must be at least 1"),
    ):
        with pytest.raises(ConfigError, match=message):
            TrainConfig.from_dict(bad)
    with pytest.raises(ConfigError, match="unknown field 'elastic'"):
        TrainConfig.from_dict({"elastic": 30.0})
    with pytest.raises(ConfigError, match="epochs is a whole number"):
        TrainConfig.from_dict({"epochs": 2.5})
    assert TrainConfig.from_dict({"pen_copies": 1, "pen_writers": "tuning"}).writers == (3, 12, 23, 27)


RECIPES = (("shipped.toml", "", "all"), ("twin.toml", "heldout-twin", "fit"))


@pytest.mark.parametrize(("recipe", "folder", "writers"), RECIPES)
def test_the_recipe_files_are_the_ones_the_shipped_models_were_trained_with(recipe, folder, writers):
    """`make train` / `make train-twin` rebuild models/ and models/heldout-twin from these files."""
    from draw2digit.training.config import WRITER_GROUPS, load_recipe
    from tests.conftest import MODELS, ROOT

    first, last = load_recipe(ROOT / "recipes" / recipe)
    assert first.config.init_from == "models/mnist-only" and not first.config.cut_pieces
    assert last.config.init_from == str(first.out) and last.config.cut_pieces > 0, "stage two continues one"
    card = json.loads((MODELS / folder / "model_card.json").read_text())
    trained = card["config"]
    for key, value in last.config.to_dict().items():
        if key != "pen_writers":
            assert trained[key] == value, (recipe, key)
    assert card["data"]["pen_digits"]["writers"] == list(WRITER_GROUPS[writers])
    assert card["recipe"] == {"file": f"recipes/{recipe}", "stage": last.name, "overrides": []}
    # what was measured and not kept (docs/experiments.md) was off in the shipped models
    assert trained.get("elastic", 0) == 0 and not trained.get("pen_style_coverage")
    assert not trained.get("pen_morph") and not trained.get("scribble_crossings")
    assert trained.get("outlier_loss", "class") == "class"
    makefile = (ROOT / "Makefile").read_text()
    assert f"--recipe recipes/{recipe}" in makefile


def test_a_recipe_stage_override_and_bad_recipes(tmp_path):
    from draw2digit.training.config import ConfigError, load_recipe
    from tests.conftest import ROOT

    stages = load_recipe(ROOT / "recipes" / "twin.toml", ["epochs=1", "limit=500"], out=str(tmp_path / "t"))
    assert [s.config.epochs for s in stages] == [1, 1] and stages[0].config.limit == 500
    assert stages[-1].out == tmp_path / "t" and stages[0].out == tmp_path / "t-base"
    assert stages[-1].config.init_from == str(tmp_path / "t-base")
    assert stages[-1].recipe["overrides"] == ["epochs=1", "limit=500"]
    bad = tmp_path / "bad.toml"
    for text, message in (
        ("[[stages]]\nname = 'a'\nout = 'x'\npen_morph = 0.5\n", "unknown field 'pen_morph'"),
        ("[[stages]]\nname = 'a'\nout = 'x'\ninit_from = 'stage:b'\n", "not an earlier stage"),
        ("[common]\nepochs = 2\n", "has no \\[\\[stages\\]\\]"),
        ("stages = [", "not valid TOML"),
    ):
        bad.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_recipe(bad)
    with pytest.raises(ConfigError, match="--set takes FIELD=VALUE"):
        load_recipe(ROOT / "recipes" / "twin.toml", ["epochs"])
    with pytest.raises(ConfigError, match="has no stage 'third'"):
        load_recipe(ROOT / "recipes" / "twin.toml", ["third.epochs=2"])
    one = load_recipe(ROOT / "recipes" / "twin.toml", ["pieces.epochs=3"])
    assert [s.config.epochs for s in one] == [10, 3], "a stage's own override leaves the others alone"


def test_train_help_lists_at_most_twelve_options(capsys):
    from draw2digit.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    options = [line for line in capsys.readouterr().out.splitlines() if line.lstrip().startswith("-")]
    assert 0 < len(options) <= 12, options


@pytest.mark.training
def test_init_from_copies_a_model_of_the_same_width_exactly():
    from draw2digit.training.model import build_model, load_keras
    from draw2digit.training.train import init_weights
    from tests.conftest import MODELS

    source = load_keras(MODELS / "mnist-only" / "model.keras")
    model = build_model(width=32, classes=11)
    init_weights(model, MODELS / "mnist-only")
    for new, old in zip(model.get_weights()[:-2], source.get_weights()[:-2], strict=True):
        np.testing.assert_array_equal(new, old)
    np.testing.assert_array_equal(model.get_weights()[-2][:, :10], source.get_weights()[-2])


@pytest.mark.training
def test_init_from_refuses_a_model_of_another_width():
    from draw2digit.training.model import build_model
    from draw2digit.training.train import init_weights
    from tests.conftest import MODELS

    for width in (16, 48):
        with pytest.raises(ValueError, match="another width"):
            init_weights(build_model(width=width, classes=11), MODELS / "mnist-only")


@pytest.mark.training
def test_train_refuses_to_start_from_a_model_of_another_width(tmp_path, capsys):
    from draw2digit.cli import main
    from tests.conftest import MODELS

    mnist_only = MODELS / "mnist-only"
    for width in (16, 48):
        settings = ["--set", f"width={width}", "--set", f"init_from='{mnist_only}'"]
        args = ["train", "--out", str(tmp_path), *settings]
        assert main(args) == 2
        assert "width 32" in capsys.readouterr().err and not any(tmp_path.iterdir())


@pytest.mark.slow
def test_a_recipe_trains_its_stages_in_order_and_a_rerun_skips_them(tmp_path, capsys, pen_digits):
    """`make train-twin` in miniature: the twin's recipe file, shrunk by --set, both stages, then resumed."""
    from draw2digit.cli import main

    out = tmp_path / "twin"
    small = [
        "limit=600",
        "epochs=1",
        "pen_copies=1",
        "pen_writers=[1]",
        "non_digits=40",
        "pieces.cut_pieces=10",
    ]
    args = ["train", "--recipe", "recipes/twin.toml", "--out", str(out), "--quiet"]
    args += [part for setting in small for part in ("--set", setting)]
    assert main(args) == 0
    first, last = read_model_card(tmp_path / "twin-base"), read_model_card(out)
    assert first["recipe"]["stage"] == "base" and last["recipe"]["stage"] == "pieces"
    assert last["recipe"]["overrides"] == small and last["config"]["init_from"] == str(tmp_path / "twin-base")
    assert (
        last["data"]["pen_digits"]["cut_pieces"]["pairs"] == 10
        and "cut_pieces" not in first["data"]["pen_digits"]
    )
    assert last["litert_weights"].startswith("int8") and last["classes"] == 11
    capsys.readouterr()
    assert main(args) == 0, "a finished stage is not trained again"
    assert capsys.readouterr().out.count("already holds it; skipping") == 2
    assert main([*args, "--set", "epochs=2"]) == 2, "another config is not silently replaced"
    assert "--force" in capsys.readouterr().err

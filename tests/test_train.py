from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from draw2digit.artifacts import read_model_card
from draw2digit.data import Split, split_train_validation
from draw2digit.train import TrainConfig, elastic_distort, random_affine, train


def test_split_is_seeded_and_disjoint(mnist_test):
    a_tr, a_va = split_train_validation(mnist_test, 1000, seed=3)
    _, b_va = split_train_validation(mnist_test, 1000, seed=3)
    assert len(a_va.labels) == 1000 and len(a_tr.labels) == 9000
    np.testing.assert_array_equal(a_va.labels, b_va.labels)
    c_tr, _ = split_train_validation(mnist_test, 1000, seed=4)
    assert not np.array_equal(a_tr.labels, c_tr.labels)


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


def test_elastic_distortion_bends_strokes_locally_and_is_seeded(mnist_test):
    x = mnist_test.images[:256, ..., None].astype("float32") / 255
    np.testing.assert_allclose(
        elastic_distort(x, 0.0, 4.0, seed=1).numpy(), x, atol=1e-6
    )  # no field, no change
    y = elastic_distort(x, 30.0, 4.0, seed=1).numpy()
    assert y.shape == x.shape and y.min() >= 0.0 and y.max() <= 1.0 + 1e-6
    changed = np.abs(y - x).mean(axis=(1, 2, 3))
    assert (changed > 0.01).mean() > 0.9, "nearly every image is bent"
    # Local bends, not a move: the centre of mass stays within about a pixel, and the ink is kept.
    grid = np.arange(28)

    def centre(a):
        m = a[..., 0].sum(axis=(1, 2))
        return np.stack([(a[..., 0].sum(2) * grid).sum(1) / m, (a[..., 0].sum(1) * grid).sum(1) / m], 1)

    assert np.median(np.abs(centre(y) - centre(x)).max(1)) < 1.0
    kept = y.sum(axis=(1, 2, 3)) / x.sum(axis=(1, 2, 3))
    assert 0.85 < np.median(kept) < 1.15
    np.testing.assert_array_equal(y, elastic_distort(x, 30.0, 4.0, seed=1).numpy())  # seeded
    assert not np.array_equal(y, elastic_distort(x, 30.0, 4.0, seed=2).numpy())
    stronger = np.abs(elastic_distort(x, 60.0, 4.0, seed=1).numpy() - x).mean()
    assert stronger > np.abs(y - x).mean(), "alpha sets the strength"


def test_elastic_with_the_affine_transform_resamples_once(mnist_test):
    """Composed, not chained: a second bilinear pass would blur every training digit."""
    x = mnist_test.images[:128, ..., None].astype("float32") / 255
    config = TrainConfig()
    np.testing.assert_allclose(
        elastic_distort(x, 0.0, 4.0, seed=5, config=config).numpy(),
        random_affine(x, config, seed=5).numpy(),
        atol=1e-5,
    )
    once = elastic_distort(x, 30.0, 4.0, seed=5, config=config).numpy()
    twice = elastic_distort(random_affine(x, config, seed=5), 30.0, 4.0, seed=5).numpy()

    def sharpness(a):  # the mean squared difference of neighbouring pixels
        return (np.diff(a, axis=1) ** 2).mean() + (np.diff(a, axis=2) ** 2).mean()

    assert sharpness(once) > 1.05 * sharpness(twice)


def test_training_batches_are_bent_only_when_asked(mnist_test):
    from draw2digit.train import make_dataset

    small = Split(mnist_test.images[:64], mnist_test.labels[:64])

    def first(config):
        return next(iter(make_dataset(small, config, training=True)))[0].numpy()

    plain, again = first(TrainConfig(batch_size=64)), first(TrainConfig(batch_size=64))
    np.testing.assert_array_equal(plain, again)
    bent = first(TrainConfig(batch_size=64, elastic=30.0))
    assert np.abs(bent - plain).mean() > 0.01


def test_non_digit_scribbles_that_look_like_digits_can_be_left_out():
    from draw2digit.train import extra_training_data

    _, plain, card = extra_training_data(TrainConfig(non_digits=36))
    _, strict, strict_card = extra_training_data(TrainConfig(non_digits=36, scribble_crossings=3))
    assert (
        card["non_digits"]["scribble_crossings"] == 0 and strict_card["non_digits"]["scribble_crossings"] == 3
    )
    assert min(len(plain.labels), len(strict.labels)) >= 30, "a few blank glyphs are dropped, no more"
    assert not np.array_equal(plain.images[:30], strict.images[:30])


def test_extra_shapes_change_the_non_digits_and_the_card_says_so():
    from draw2digit.train import extra_training_data

    _, plain, card = extra_training_data(TrainConfig(non_digits=36))
    _, wider, wider_card = extra_training_data(TrainConfig(non_digits=36, extra_shapes=True))
    assert card["non_digits"]["extra_shapes"] is False and wider_card["non_digits"]["extra_shapes"] is True
    assert not np.array_equal(plain.images[:30], wider.images[:30])


def test_uniform_outlier_loss_teaches_non_digits_a_flat_answer_at_half_weight():
    """Outlier exposure without an 11th class: non-digits get 1/10 for every digit, weighted 0.5."""
    import tensorflow as tf

    from draw2digit.train import NOT_A_DIGIT, make_dataset

    labels = np.array([3, NOT_A_DIGIT, 7, NOT_A_DIGIT, 0, 1], np.uint8)
    images = np.random.default_rng(0).integers(0, 255, (6, 28, 28), np.uint8)
    config = TrainConfig(batch_size=6, augment=False)
    _, target, weight = next(
        iter(make_dataset(Split(images, labels), config, training=False, uniform_outliers=True))
    )
    outlier = labels == NOT_A_DIGIT
    np.testing.assert_allclose(target.numpy()[outlier], 0.1)
    np.testing.assert_array_equal(target.numpy()[~outlier].argmax(1), labels[~outlier])
    np.testing.assert_allclose(target.numpy()[~outlier].max(1), 1.0)
    np.testing.assert_allclose(weight.numpy(), np.where(outlier, 0.5, 1.0))

    # With a teacher, MNIST rows still mix in its answer; the non-digits stay flat.
    def teacher(x, training=False):
        return tf.one_hot(tf.fill([tf.shape(x)[0]], 9), 10)

    taught = np.array([True, False, False, False, True, False])
    _, mixed, _ = next(
        iter(
            make_dataset(
                Split(images, labels),
                config,
                training=False,
                teacher=teacher,
                taught=taught,
                uniform_outliers=True,
            )
        )
    )
    np.testing.assert_allclose(mixed.numpy()[0, [3, 9]], [0.5, 0.5])
    np.testing.assert_allclose(mixed.numpy()[outlier], 0.1)
    np.testing.assert_allclose(mixed.numpy()[2], np.eye(10)[7])
    # Without the option, the same rows are plain labels (the 11-class recipe).
    _, plain = next(iter(make_dataset(Split(images, labels), config, training=False)))
    np.testing.assert_array_equal(plain.numpy(), labels)


def test_mnist_class_weights_weigh_only_mnist_rows_of_those_digits():
    import tensorflow as tf

    from draw2digit.train import NOT_A_DIGIT, make_dataset, mnist_row_weights

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
    _, _, w = next(iter(make_dataset(split, config, training=False, uniform_outliers=True, **kwargs)))
    np.testing.assert_allclose(w.numpy(), [3, 2, 1, 3, 1, 0.5])  # times the outlier weight


@pytest.mark.parametrize("text", ["7", "7:x", "10:2", "7:-1", "7:2,7:3"])
def test_cli_train_refuses_unreadable_class_weights(capsys, tmp_path, text):
    from draw2digit.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["train", "--out", str(tmp_path), "--mnist-class-weights", text])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert (
        "argument --mnist-class-weights: expected digit:weight pairs like 7:3,9:2" in err
        and "Traceback" not in err
    )
    assert not any(tmp_path.iterdir()), "refused before any work"


def test_pen_perturb_strength_reaches_the_drawings_and_the_card(pen_digits):
    from draw2digit.train import extra_training_data

    base = TrainConfig(pen_copies=1, pen_writers=(1,))
    pen, _, card = extra_training_data(base)
    bent, _, bent_card = extra_training_data(TrainConfig(pen_copies=1, pen_writers=(1,), pen_perturb=2.0))
    assert (
        card["pen_digits"]["perturb_strength"] == 1.0 and bent_card["pen_digits"]["perturb_strength"] == 2.0
    )
    np.testing.assert_array_equal(pen.labels, bent.labels)
    assert not np.array_equal(pen.images, bent.images)


def test_pen_morph_reaches_the_drawings_and_the_card(pen_digits):
    from draw2digit.train import extra_training_data

    pen, _, card = extra_training_data(TrainConfig(pen_copies=1, pen_writers=(1, 2)))
    config = TrainConfig(pen_copies=1, pen_writers=(1, 2), pen_morph=1.0)
    morphed, _, morphed_card = extra_training_data(config)
    assert card["pen_digits"]["morph_share"] == 0.0 and morphed_card["pen_digits"]["morph_share"] == 1.0
    np.testing.assert_array_equal(pen.labels, morphed.labels)
    assert not np.array_equal(pen.images, morphed.images)


def test_cut_pieces_join_the_pen_digits_and_the_card_counts_them(pen_digits):
    from draw2digit.train import extra_training_data

    pen, _, card = extra_training_data(TrainConfig(pen_copies=1, pen_writers=(1,)))
    cut, _, cut_card = extra_training_data(TrainConfig(pen_copies=1, pen_writers=(1,), cut_pieces=20))
    added = cut_card["pen_digits"]["cut_pieces"]
    assert "cut_pieces" not in card["pen_digits"] and added["pairs"] == 20 and added["pieces"] > 0
    assert len(cut.labels) == len(pen.labels) + added["pieces"]
    np.testing.assert_array_equal(cut.images[: len(pen.labels)], pen.images)


def test_a_second_run_of_the_same_classes_continues_its_parents_history(tmp_path):
    """Stage two (``--init-from`` stage one) plots both runs; an eleven-class run grown from a
    ten-class model starts afresh."""
    from draw2digit.train import parent_history, plot_history

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
    from draw2digit.train import batch_norm_momentum

    momentum = batch_norm_momentum(steps)
    assert 0.5 <= momentum <= 0.99
    if steps >= 20:  # long enough: the averages span at most a tenth of the run
        assert 1 / (1 - momentum) <= max(steps / 10, 2) + 1e-9


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
    from draw2digit import pendigits
    from draw2digit.artifacts import is_quantized
    from draw2digit.predictor import Predictor
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


@pytest.mark.slow
def test_uniform_outlier_loss_trains_a_ten_class_model(mnist_test, tmp_path):
    from draw2digit.predictor import Predictor
    from tests.conftest import MODELS

    card, held = _one_gentle_epoch(
        mnist_test, tmp_path, non_digits=60, outlier_loss="uniform", init_from=str(MODELS / "mnist-only")
    )
    assert card["classes"] == 10
    assert card["data"]["non_digits"]["loss"] == "uniform" and card["data"]["non_digits"]["class"] is None
    assert card["test_accuracy"] > 0.97, "one gentle epoch from the MNIST-only weights keeps MNIST"
    out = Predictor(tmp_path).outputs(held.images[:20] / 255.0)
    assert out.probabilities.shape == (20, 10) and out.not_digit is None
    with pytest.raises(ValueError, match="outlier_loss is 'class' or 'uniform'"):
        train(TrainConfig(non_digits=6, outlier_loss="flat"), tmp_path / "x", verbose=0, train_split=held)
    bad = TrainConfig(mnist_class_weights=((7, 0.0),))
    with pytest.raises(ValueError, match="a digit 0-9 and a weight over 0"):
        train(bad, tmp_path / "y", verbose=0, train_split=held)
    assert not (tmp_path / "y").exists(), "refused before any work"


def test_the_makefile_recipes_are_the_ones_the_shipped_models_were_trained_with():
    """`make train` / `make train-twin` rebuild models/ and models/heldout-twin: one recipe, other writers."""
    import re
    import shlex

    from draw2digit import pendigits
    from draw2digit.artifacts import is_quantized
    from draw2digit.cli import build_parser
    from draw2digit.train import TrainConfig
    from tests.conftest import MODELS, ROOT

    defaults = TrainConfig()
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    recipe = re.search(r"^RECIPE = (.+)$", makefile, re.M).group(1)
    pieces = re.search(r"^PIECES = (.+)$", makefile, re.M).group(1)
    for folder, target, writers in (
        (MODELS, "train", pendigits.WRITERS),
        (MODELS / "heldout-twin", "train-twin", pendigits.FIT_WRITERS),
    ):
        lines = re.search(rf"^{target}:.*\n((?:\t.+\n)+)", makefile, re.M).group(1).splitlines()
        commands = [
            line.split("draw2digit ")[1].replace("$(RECIPE)", recipe).replace("$(PIECES)", pieces)
            for line in lines
        ]
        runs = [build_parser().parse_args(shlex.split(c)) for c in commands]
        first, args = (r for r in runs if r.command == "train")
        assert args.init_from == first.out and args.cut_pieces > 0, "the second run continues the first"
        assert first.init_from == "models/mnist-only" and not first.cut_pieces
        assert runs[-1].command == "calibrate" and runs[-1].model == args.out
        card = json.loads((folder / "model_card.json").read_text())
        config = card["config"]
        for key in (
            "epochs",
            "learning_rate",
            "warmup_epochs",
            "pen_copies",
            "non_digits",
            "seed",
            "width",
            "cut_pieces",
        ):
            assert config[key] == getattr(args, key), (folder, key)
        assert is_quantized(card) == args.quantize, folder
        assert config["init_from"] == args.init_from and config["distill_from"] == args.distill_from
        # Cards older than an option lack its key: they were trained with its default.
        for key, flag in (
            ("elastic", "elastic"),
            ("pen_perturb", "pen_perturb"),
            ("pen_style_coverage", "style_coverage"),
            ("scribble_crossings", "scribble_crossings"),
            ("extra_shapes", "extra_shapes"),
            ("outlier_loss", "outlier_loss"),
            ("distill_weight", "distill_weight"),
        ):
            assert config.get(key, getattr(defaults, key)) == getattr(args, flag), (folder, key)
        trained = config.get("mnist_class_weights", defaults.mnist_class_weights)
        assert [list(p) for p in trained] == [list(p) for p in args.mnist_class_weights], folder
        assert card["data"]["pen_digits"]["writers"] == list(writers), folder


def test_init_from_copies_a_model_of_the_same_width_exactly():
    from draw2digit.model import build_model, load_keras
    from draw2digit.train import init_weights
    from tests.conftest import MODELS

    source = load_keras(MODELS / "mnist-only" / "model.keras")
    model = build_model(width=32, classes=11)
    init_weights(model, MODELS / "mnist-only")
    for new, old in zip(model.get_weights()[:-2], source.get_weights()[:-2], strict=True):
        np.testing.assert_array_equal(new, old)
    np.testing.assert_array_equal(model.get_weights()[-2][:, :10], source.get_weights()[-2])


def test_init_from_a_narrower_model_widens_it_keeping_its_answers(mnist_test):
    """Net2WiderNet: a width-48 model seeded by the width-32 MNIST-only one reads MNIST as it does."""
    from draw2digit.model import build_model, load_keras
    from draw2digit.train import init_weights
    from tests.conftest import MODELS

    source = load_keras(MODELS / "mnist-only" / "model.keras")
    model = build_model(width=48, classes=11)
    init_weights(model, MODELS / "mnist-only")
    assert model.count_params() > 2 * source.count_params()
    x = mnist_test.images[:300].astype(np.float32)[..., None] / 255
    wide = model.predict(x, verbose=0)[:, :10]
    wide /= wide.sum(1, keepdims=True)
    narrow = source.predict(x, verbose=0)
    assert (wide.argmax(1) == narrow.argmax(1)).mean() >= 0.99
    assert np.abs(wide - narrow).mean() < 0.01
    first = model.get_weights()[0]  # (3, 3, 1, 48): the 16 new filters are noisy copies of old ones
    gaps = np.abs(first[..., 32:, None] - first[..., None, :32]).max(axis=(0, 1, 2))  # (new 16, old 32)
    nearest = gaps.min(axis=1)
    assert min(nearest) > 0 and max(nearest) < 0.05 * np.abs(first).max(), nearest
    with pytest.raises(ValueError, match="wider than this model"):
        init_weights(build_model(width=16, classes=11), MODELS / "mnist-only")


def test_train_refuses_to_narrow_the_model_it_starts_from(tmp_path, capsys):
    from draw2digit.cli import main
    from tests.conftest import MODELS

    args = ["train", "--out", str(tmp_path), "--width", "16", "--init-from", str(MODELS / "mnist-only")]
    assert main(args) == 2
    assert "width 32" in capsys.readouterr().err and not any(tmp_path.iterdir())

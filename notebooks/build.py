"""Write the three lesson notebooks from this file, then run them with `make notebooks`.

Keeping their source here (cells as plain strings) keeps the notebooks short,
reviewable in diffs, and free of copied library code: each cell calls draw2digit.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


def md(text: str):
    return new_markdown_cell(text.strip())


def code(text: str, tags: list[str] | None = None):
    cell = new_code_cell(text.strip())
    if tags:
        cell.metadata["tags"] = tags
    return cell


DRAW = [
    md(
        """
# Draw2Digit

Draw a digit from 0 to 9 on the pad. A convolutional network trained on MNIST reads it at the end of each
stroke: the big digit is its answer, the bars are its probability for every digit, and the small picture is
the 28×28 image it was given, prepared the way MNIST's own digits were.
"""
    ),
    code(
        """
from draw2digit.widget import DrawingPad

pad = DrawingPad()
pad
"""
    ),
    md(
        """
*Tips:* draw one digit, large, in the middle or anywhere else; use **Undo** for the last stroke and
**Clear** to start again. The same library serves the web app (`draw2digit serve`), so both give the same
answer for the same drawing.
"""
    ),
]


TRAIN = [
    md(
        """
# Lesson 1: train a digit reader

This notebook trains the Draw2Digit network on MNIST, step by step: load the data, look at it, see what
augmentation does, build the model, train it and plot how it learned. Everything here calls the
`draw2digit` library, the same code that trained the shipped model (`draw2digit train`).
"""
    ),
    md(
        """
## Parameters

A short run by default, so the notebook finishes in a minute or two on a laptop CPU. Set `FULL_RUN = True`
for the run that made the shipped model (36 epochs on all 55,000 training images: about 50 minutes on two
CPU cores).
"""
    ),
    code(
        """
FULL_RUN = False
EPOCHS = 36 if FULL_RUN else 2
LIMIT = None if FULL_RUN else 12_800  # training images used; None = all
OUT_DIR = "../runs/notebook"
""",
        tags=["parameters"],
    ),
    md(
        """
## Load MNIST

The library reads the four original IDX files, checks each against its published SHA-256, and finds them
in `$DRAW2DIGIT_DATA_DIR` or its cache (downloading them once if they are missing).
"""
    ),
    code(
        """
import numpy as np
import matplotlib.pyplot as plt
from draw2digit.data import load_mnist

train_split, test_split = load_mnist()
print("train:", train_split.images.shape, train_split.images.dtype)
print("test: ", test_split.images.shape)
print("images per digit (train):", np.bincount(train_split.labels).tolist())
"""
    ),
    md(
        """
## Look at the data

Each image is 28×28 grey levels, 0 for paper and 255 for ink. The digits were scaled into a 20×20 box and
centred on their centre of mass, which is why the app prepares every drawing the same way.
"""
    ),
    code(
        """
fig, axes = plt.subplots(3, 10, figsize=(10, 3.3))
for ax, image, label in zip(axes.flat, train_split.images, train_split.labels):
    ax.imshow(image, cmap="gray_r")
    ax.set_title(int(label))
    ax.axis("off")
plt.tight_layout()
plt.show()
"""
    ),
    md(
        """
## Augmentation: the same digit, drawn a little differently

People rotate, slant, shrink and shift their digits. During training every batch gets one random affine
change per image (up to ±10° of rotation, ±10 % zoom, ±10° of shear and ±10 % shift), so the network
learns the digit, not its exact pose. Top row: originals; below: three random versions of each.
"""
    ),
    code(
        """
from draw2digit.train import TrainConfig, random_affine

originals = train_split.images[:8, ..., None].astype("float32") / 255
fig, axes = plt.subplots(4, 8, figsize=(8, 4.2))
for row in range(4):
    batch = originals if row == 0 else random_affine(originals, TrainConfig(), seed=row).numpy()
    for ax, image in zip(axes[row], batch):
        ax.imshow(image[..., 0], cmap="gray_r")
        ax.axis("off")
plt.tight_layout()
plt.show()
"""
    ),
    md(
        """
## Build the model

Three blocks of convolutions with batch normalization and dropout take the image from 28×28 to 14×14 to
7×7 to a single vector, and a softmax turns it into ten probabilities.
"""
    ),
    code(
        """
from draw2digit.model import build_model

build_model().summary()
"""
    ),
    md(
        """
## Train

`train` holds out 5,000 images for validation, trains with a warm-up then cosine-decaying learning rate,
scores the test set, and writes the model, its model card and the training plot into `OUT_DIR`.
The progress output changes from run to run, so the tests do not compare it.
"""
    ),
    code(
        """
# NBVAL_IGNORE_OUTPUT
from draw2digit.train import train

card = train(TrainConfig(epochs=EPOCHS, limit=LIMIT), OUT_DIR, verbose=2)
print(f"test accuracy after {card['epochs']} epochs: {100 * card['test_accuracy']:.2f} %")
"""
    ),
    md(
        """
## How it learned

Accuracy and loss per epoch on the (augmented) training images and on the held-out validation images.
Validation above training is normal here: the training images are the harder, augmented ones.
"""
    ),
    code(
        """
from IPython.display import Image

Image(filename=f"{OUT_DIR}/training_history.png")
"""
    ),
    md(
        """
## What next

`FULL_RUN = True` reproduces the shipped model. Lesson 2 (`02_evaluate.ipynb`) looks closely at the shipped
model: where it errs, and what preprocessing does to a drawing.
"""
    ),
]

EVALUATE = [
    md(
        """
# Lesson 2: how good is the shipped model, and why preprocessing matters

We score the model in `models/` on MNIST's 10,000 test digits, look at its mistakes, and then follow a
drawing through the preprocessing that turns it into the 28×28 image the network reads.
"""
    ),
    md(
        """
## Score the test set

The `Predictor` loads the model once (its LiteRT copy: about a millisecond per drawing) and scores all
10,000 test images in batches.
"""
    ),
    code(
        """
import matplotlib.pyplot as plt
from draw2digit.data import load_split
from draw2digit.evaluate import evaluate_arrays, plot_confusion, plot_mistakes, plot_per_class
from draw2digit.predictor import Predictor

predictor = Predictor()
test = load_split("test")
report = evaluate_arrays(predictor.probabilities(test.images / 255.0), test.labels)
print(report.table())
"""
    ),
    md(
        """
## Accuracy per digit

Some digits are harder than others; the bars zoom in on the top few percent.
"""
    ),
    code(
        """
plot_per_class(report)
plt.show()
"""
    ),
    md(
        """
## Which digits get confused

Rows are the true digit, columns the prediction; the diagonal (correct answers) is left out so the few
errors stand out.
"""
    ),
    code(
        """
plot_confusion(report)
plt.show()
"""
    ),
    md(
        """
## The worst mistakes

The mistakes the model was most sure of. Many are digits a person would hesitate over too.
"""
    ),
    code(
        """
plot_mistakes(test.images, report, count=16)
plt.show()
"""
    ),
    md(
        """
## What preprocessing does to a drawing

A drawing from a canvas is nothing like an MNIST digit: it is larger, anywhere on the canvas, and drawn
with whatever pen width. `preprocess` crops it to the ink, evens out the stroke width, scales it into a
20×20 box and centres its centre of mass in 28×28. Top: the bundled example drawings; bottom: what the
network sees, with its answer.
"""
    ),
    code(
        """
from pathlib import Path
from PIL import Image
from draw2digit.preprocess import preprocess

examples = sorted(Path("../examples").glob("[0-9]_*"))
fig, axes = plt.subplots(2, len(examples), figsize=(1.4 * len(examples), 3.2))
for (top, bottom), path in zip(axes.T, examples):
    image = Image.open(path).convert("RGBA")
    paper = Image.new("RGBA", image.size, "white")
    paper.alpha_composite(image)
    top.imshow(paper.convert("RGB"))
    top.set_title(path.stem.split("_", 1)[1].replace("_", " "), fontsize=7)
    result = predictor.predict(path)
    bottom.imshow(preprocess(path).image, cmap="gray")
    bottom.set_title(f"→ {result.digit} ({100 * result.confidence:.0f}%)", fontsize=9)
for ax in axes.flat:
    ax.axis("off")
plt.tight_layout()
plt.show()
"""
    ),
    md(
        """
## Does it matter? Measure it

The same MNIST test digits, re-drawn as canvas drawings at random sizes, places, pen widths and polarities,
read three ways: with the full pipeline, without stroke-width normalization, and with the usual tutorial
recipe (squash the whole canvas to 28×28). `draw2digit evaluate --redrawn 3000 --ablation` prints the same
on more drawings.
"""
    ),
    code(
        """
from draw2digit.evaluate import redrawn_accuracy

result = redrawn_accuracy(predictor, test.images, test.labels, count=500, ablation=True)
for name, value in result.items():
    if name not in ("count", "blank", "rejected", "accepted_accuracy"):
        print(f"{'this pipeline' if name == 'accuracy' else name:<28} {100 * value:6.1f} %")
print(f"(and {result['rejected']} of them the model calls 'not a digit')")
"""
    ),
    md(
        """
## Why it thinks so

*Integrated gradients* follow the model's answer back to the input: they average the gradient of the
winning digit's score along the way from an empty canvas to the drawing, times the drawing. Bright pixels
pushed the model towards its answer. Notice how the distinctive parts light up: the bar of a 7, the
crossing of a 4, the closed loop of a 9. (The first call loads the Keras copy of the model.)
"""
    ),
    code(
        """
from draw2digit.drawing import digit_drawing
from draw2digit.explain import overlay_png
import io

fig, axes = plt.subplots(1, 5, figsize=(8, 2))
for ax, d in zip(axes, (2, 4, 5, 7, 9)):
    result = predictor.predict(digit_drawing(d))
    ax.imshow(Image.open(io.BytesIO(overlay_png(result.image, predictor.saliency(result)))))
    ax.set_title(f"read as {result.digit}")
    ax.axis("off")
plt.tight_layout()
plt.show()
"""
    ),
    md(
        """
## Honest confidence, and "that is not a digit"

A softmax network must pick one of ten digits even for a letter. `draw2digit calibrate` fitted a
temperature on the validation images (so a 90 % confidence is right about 90 % of the time) and chose a
rejection rule from measured rates: how many real digits it rejects and how many non-digits (letters and
symbols in several fonts, scribbles, shapes) it catches. Its report ships beside the model.
"""
    ),
    code(
        """
import json

cal = json.loads(Path("../models/calibration.json").read_text())
print(f"temperature {cal['temperature']:.2f}; expected calibration error on the test set "
      f"{100 * cal['ece']['test_before']:.2f} % -> {100 * cal['ece']['test_after']:.2f} %")
for rule, r in cal["rules"].items():
    print(f"{rule:<16} rejects {100 * r['mnist_false_rejection']:.2f} % of MNIST digits and "
          f"{100 * r['non_digit_rejection']:.1f} % of non-digits")
print("chosen:", cal["rule"])
"""
    ),
    code(
        """
from draw2digit.drawing import non_digit_drawings

fig, axes = plt.subplots(1, 8, figsize=(10, 1.9))
for ax, (image, kind) in zip(axes, non_digit_drawings(8, seed=7)):
    result = predictor.predict(image)
    paper = Image.new("RGBA", image.size, "white")
    paper.alpha_composite(image)
    ax.imshow(paper.convert("L"), cmap="gray")
    ax.set_title("not a digit" if result.rejected else f"{result.digit}?", fontsize=9)
    ax.axis("off")
plt.tight_layout()
plt.show()
"""
    ),
    md(
        """
## Learning from corrections

When the page or the pad reads a drawing wrong, the user clicks the right digit and the drawing is stored
(`draw2digit.feedback`, SQLite). `draw2digit finetune` then trains the model a little further on MNIST plus
the corrections, holding a fifth of them back to measure what it learned. Here is the loop in miniature:
ten thin "1"s that should count as 7s, and a short fine-tune on a slice of MNIST.
"""
    ),
    code(
        """
# NBVAL_IGNORE_OUTPUT
import tempfile
from draw2digit.feedback import FeedbackStore
from draw2digit.train import finetune

workdir = Path(tempfile.mkdtemp())
store = FeedbackStore(workdir / "feedback.sqlite3")
for width in range(10):
    store.add(digit_drawing(1, width=4 + 3 * width), label=7, predicted=1)
card = finetune("../models", store.load(), workdir / "model", epochs=1, mnist_limit=3000, repeat=40)
before, after = card["finetune"]["before"], card["finetune"]["after"]
print(f"MNIST test:            {100 * before['mnist_test_accuracy']:.2f} % -> "
      f"{100 * after['mnist_test_accuracy']:.2f} %")
print(f"held-back corrections: {100 * before['heldout_corrections_accuracy']:.0f} % -> "
      f"{100 * after['heldout_corrections_accuracy']:.0f} %")
"""
    ),
]


def write(name: str, cells: list) -> Path:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    path = HERE / name
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":
    for name, cells in (("01_train.ipynb", TRAIN), ("02_evaluate.ipynb", EVALUATE), ("03_draw.ipynb", DRAW)):
        print(write(name, cells))

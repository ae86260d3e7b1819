# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 2: evaluating a model
#
# We score the model in `models/` on MNIST's 10,000 test digits, look at its mistakes, follow a drawing
# through the preprocessing that turns it into the 28×28 image the network reads, and ask the network why
# it answered as it did. Lesson 3 then grades it on real drawings by real people.

# %% [markdown]
# ## Score the test set
#
# The `Predictor` loads the model once (its LiteRT copy: about a millisecond per drawing) and scores all
# 10,000 test images in batches.

# %%
import matplotlib.pyplot as plt

from draw2digit.predictor import Predictor
from draw2digit.training.data import load_split
from draw2digit.training.evaluate import evaluate_arrays, plot_confusion, plot_mistakes, plot_per_class

predictor = Predictor()
test = load_split("test")
report = evaluate_arrays(predictor.probabilities(test.images / 255.0), test.labels)
print(report.table())

# %% [markdown]
# ## Accuracy per digit
#
# Some digits are harder than others; the bars zoom in on the top few percent.

# %%
plot_per_class(report)
plt.show()

# %% [markdown]
# ## Which digits get confused
#
# Rows are the true digit, columns the prediction; the diagonal (correct answers) is left out so the few
# errors stand out.

# %%
plot_confusion(report)
plt.show()

# %% [markdown]
# ## The worst mistakes
#
# The mistakes the model was most sure of. Many are digits a person would hesitate over too.

# %%
plot_mistakes(test.images, report, count=16)
plt.show()

# %% [markdown]
# ## What preprocessing does to a drawing
#
# A drawing from a canvas is nothing like an MNIST digit: it is larger, anywhere on the canvas, and drawn
# with whatever pen width. `preprocess` crops it to the ink, evens out the stroke width, scales it into a
# 20×20 box and centres its centre of mass in 28×28. Top: the bundled example drawings; bottom: what the
# network sees, with its answer.

# %%
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

# %% [markdown]
# ## Does it matter? Measure it
#
# The same MNIST test digits, re-drawn as canvas drawings at random sizes, places, pen widths and polarities,
# read three ways: with the full pipeline, without stroke-width normalization, and with the usual tutorial
# recipe (squash the whole canvas to 28×28). `draw2digit evaluate --redrawn 3000 --ablation` prints the same
# on more drawings.

# %%
from draw2digit.training.evaluate import redrawn_accuracy

result = redrawn_accuracy(predictor, test.images, test.labels, count=500, ablation=True)
for name, value in result.items():
    if name not in ("count", "blank", "rejected", "accepted_accuracy"):
        print(f"{'this pipeline' if name == 'accuracy' else name:<28} {100 * value:6.1f} %")
print(f"(and {result['rejected']} of them the model calls 'not a digit')")

# %% [markdown]
# ## Why it thinks so
#
# *Occlusion* asks the model itself: each small patch of ink is painted over in turn, all of them in one
# batch, and the more the answer's odds fall without a patch, the brighter its ink. Bright pixels are what
# the answer rests on. Notice how the distinctive parts light up: the bar of a 7, the crossing of a 4, the
# closed loop of a 9.

# %%
import io

from draw2digit.explain import overlay_png
from draw2digit.training.synthetic import digit_drawing

fig, axes = plt.subplots(1, 5, figsize=(8, 2))
for ax, d in zip(axes, (2, 4, 5, 7, 9)):
    result = predictor.predict(digit_drawing(d))
    ax.imshow(Image.open(io.BytesIO(overlay_png(result.image, predictor.saliency(result)))))
    ax.set_title(f"read as {result.digit}")
    ax.axis("off")
plt.tight_layout()
plt.show()

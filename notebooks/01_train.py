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
# # Lesson 1: train a digit reader
#
# This notebook trains the Draw2Digit network on MNIST, step by step: load the data, look at it, see what
# augmentation does, build the model, train it and plot how it learned. Everything here calls the
# `draw2digit` library, the same code that trains the shipped model (`draw2digit train`).

# %% [markdown]
# ## Parameters
#
# A short run by default, so the notebook finishes in a minute or two on a laptop CPU. Set `FULL_RUN = True`
# for the run that made the first, MNIST-only model in `models/mnist-only` (36 epochs on all 55,000 training
# images: about 50 minutes on two CPU cores). The shipped model starts from that one and also learns real
# pen drawings and "not a digit": lesson 2 shows why, and `make train` runs it.

# %% tags=["parameters"]
FULL_RUN = False
EPOCHS = 36 if FULL_RUN else 2
LIMIT = None if FULL_RUN else 12_800  # training images used; None = all
OUT_DIR = "../runs/notebook"

# %% [markdown]
# ## Load MNIST
#
# The library reads the four original IDX files, checks each against its published SHA-256, and finds them
# in `$DRAW2DIGIT_DATA_DIR` or its cache (downloading them once if they are missing).

# %%
import matplotlib.pyplot as plt
import numpy as np

from draw2digit.training.data import load_mnist

train_split, test_split = load_mnist()
print("train:", train_split.images.shape, train_split.images.dtype)
print("test: ", test_split.images.shape)
print("images per digit (train):", np.bincount(train_split.labels).tolist())

# %% [markdown]
# ## Look at the data
#
# Each image is 28×28 grey levels, 0 for paper and 255 for ink. The digits were scaled into a 20×20 box and
# centred on their centre of mass, which is why the app prepares every drawing the same way.

# %%
fig, axes = plt.subplots(3, 10, figsize=(10, 3.3))
for ax, image, label in zip(axes.flat, train_split.images, train_split.labels):
    ax.imshow(image, cmap="gray_r")
    ax.set_title(int(label))
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Augmentation: the same digit, drawn a little differently
#
# People rotate, slant, shrink and shift their digits. During training every batch gets one random affine
# change per image (up to ±10° of rotation, ±10 % zoom, ±10° of shear and ±10 % shift), so the network
# learns the digit, not its exact pose. Top row: originals; below: three random versions of each.

# %%
from draw2digit.training.config import TrainConfig
from draw2digit.training.train import random_affine

originals = train_split.images[:8, ..., None].astype("float32") / 255
fig, axes = plt.subplots(4, 8, figsize=(8, 4.2))
for row in range(4):
    batch = originals if row == 0 else random_affine(originals, TrainConfig(), seed=row).numpy()
    for ax, image in zip(axes[row], batch):
        ax.imshow(image[..., 0], cmap="gray_r")
        ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Build the model
#
# Three blocks of convolutions with batch normalization and dropout take the image from 28×28 to 14×14 to
# 7×7 to a single vector, and a softmax turns it into ten probabilities.

# %%
from draw2digit.training.model import build_model

build_model().summary()

# %% [markdown]
# ## Train
#
# `train` holds out 5,000 images for validation, trains with a warm-up then cosine-decaying learning rate,
# scores the test set, and writes the model, its model card and the training plot into `OUT_DIR`.
# The progress output changes from run to run, so the tests do not compare it.

# %% tags=["nbval-ignore-output"]
from draw2digit.training.train import train

card = train(TrainConfig(epochs=EPOCHS, limit=LIMIT), OUT_DIR, verbose=2)
print(f"test accuracy after {card['epochs']} epochs: {100 * card['test_accuracy']:.2f} %")

# %% [markdown]
# ## How it learned
#
# Accuracy and loss per epoch on the (augmented) training images and on the held-out validation images.
# Validation above training is normal here: the training images are the harder, augmented ones.

# %%
from IPython.display import Image

Image(filename=f"{OUT_DIR}/training_history.png")

# %% [markdown]
# ## What next
#
# `FULL_RUN = True` reproduces the MNIST-only model. Lesson 2 (`02_evaluate.ipynb`) looks closely at the
# shipped model: where it errs, what preprocessing does to a drawing, and how it fares on real drawings by
# people it never saw.

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
# # Draw2Digit
#
# Draw a digit from 0 to 9 on the pad. A convolutional network trained on MNIST reads it at the end of each
# stroke: the big digit is its answer, the bars are its probability for every digit, and the small picture is
# the 28×28 image it was given, prepared the way MNIST's own digits were.

# %%
from draw2digit.widget import DrawingPad

pad = DrawingPad()
pad

# %% [markdown]
# *Tips:* draw one digit, large, in the middle or anywhere else; **Undo** (Ctrl+Z), **Redo** (Ctrl+Shift+Z or
# Ctrl+Y) and **Clear** (Esc; Ctrl+Z brings it back) work as on the web page. **A number** reads several
# digits side by side. If the answer is wrong, **Not right?** lets you say what it is (in number mode, choose
# the wrong digit first): the drawing is kept for the next fine-tuning. **Show why** puts the 28×28 input
# beside the pixels that pushed the network to its answer. The same library serves the web app
# (`draw2digit serve`), so both give the same answer for the same drawing.

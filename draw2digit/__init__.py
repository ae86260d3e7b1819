"""Draw2Digit: read hand-drawn digits with a CNN trained on MNIST."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's info/warning lines are noise for users

__version__ = "0.1.0"

NUM_CLASSES = 10

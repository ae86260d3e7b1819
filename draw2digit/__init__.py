"""Draw2Digit: read hand-drawn digits with a CNN trained on MNIST."""

__version__ = "0.1.0"

NUM_CLASSES = 10

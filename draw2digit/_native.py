"""Quiet the C++ start-up chatter of TensorFlow, absl and LiteRT.

Their "oneDNN custom operations are on", "All log messages before
absl::InitializeLog()" and "Created TensorFlow Lite XNNPACK delegate" lines go
straight to file descriptor 2, bypassing Python, at import or first allocation.
They carry no information for a user and make notebook outputs vary, so those
one-time steps run with descriptor 2 pointed at /dev/null, but only on the main
thread: descriptor 2 belongs to the whole process, and silencing it from a
request thread would swallow every other thread's log lines meanwhile.
Python exceptions still propagate as usual.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # never from a worker thread: see the module's docstring
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_TF_LOCK = threading.Lock()
_tf = None


def import_tensorflow():
    """``import tensorflow``, without its start-up log lines.

    One thread imports, the others wait: a second thread that found the module
    half-initialised in ``sys.modules`` would fail on missing attributes (the
    notebook pad and the server warm "Show why" in a background thread).
    """
    global _tf
    if _tf is not None:
        return _tf
    with _TF_LOCK:
        if _tf is None:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # info/warning lines are noise for users
            with quiet_native_stderr():
                import tensorflow

            tensorflow.get_logger().setLevel("ERROR")  # e.g. "Assets written to ..." on every LiteRT export
            _tf = tensorflow
    return _tf

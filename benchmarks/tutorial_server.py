"""The reference we compare against: how the usual tutorial serves an MNIST model.

Flask's development server, the whole canvas squashed to 28x28, and
``model.predict`` on every request. Used only by ``bench_api.py``.
"""

from __future__ import annotations

import base64
import io
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from flask import Flask, jsonify, request
from PIL import Image

model = keras.saving.load_model(sys.argv[2], compile=False)
app = Flask(__name__)


@app.post("/predict")
def predict():
    data = request.get_json()["image"].split(",", 1)[-1]
    image = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGBA")
    paper = Image.new("RGBA", image.size, "white")
    paper.alpha_composite(image)
    gray = paper.convert("L").resize((28, 28))
    x = (255 - np.asarray(gray, dtype="float32")) / 255.0
    probs = model.predict(x.reshape(1, 28, 28, 1))[0][:10]  # an 11th output, if any, is "not a digit"
    return jsonify(digit=int(probs.argmax()), confidence=float(probs.max()), probabilities=probs.tolist())


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]))

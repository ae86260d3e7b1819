"""Locust users for `make bench-scale`: people drawing, one POST /predict per finished stroke.

Each user sends canvas PNGs of the digit templates at several pen widths (as
the page sends them) with a short think time; one in ten asks for a number.
Run headless and bounded by benchmarks/bench_scale.py, against loopback only.
"""

from __future__ import annotations

import base64
import random

from locust import HttpUser, between, task

from draw2digit.canvas import to_png
from draw2digit.training.synthetic import digit_drawing

DRAWINGS = [
    "data:image/png;base64," + base64.b64encode(to_png(digit_drawing(d, width=w))).decode()
    for d in range(10)
    for w in (8, 18, 30)
]


class Drawer(HttpUser):
    wait_time = between(0.05, 0.2)

    @task(9)
    def digit(self) -> None:
        self.client.post("/predict", json={"image": random.choice(DRAWINGS)}, name="/predict digit")

    @task(1)
    def number(self) -> None:
        self.client.post(
            "/predict", json={"image": random.choice(DRAWINGS), "mode": "number"}, name="/predict number"
        )

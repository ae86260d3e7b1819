"""Online evaluation of learning each person's handwriting, through the whole serving path.

Each held-out writer becomes one user of a fresh app (its own temporary
database): their digits come in a seeded random order, each is sent to
``POST /predict`` as a finished drawing, and a wrong or rejected answer is
corrected with ``POST /feedback``, as a person would. The model alone is read
from the same answers (``model_digit``), so both figures are on one sequence.
"""

from __future__ import annotations

import base64
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from draw2digit.canvas import to_png
from draw2digit.training import pendigits
from draw2digit.training.evaluate import pen_drawings
from draw2digit_app.resources import PERSONAL

#: the learning curve: accuracy on drawings of a digit its writer had corrected this many times before
CURVE = ((0, 0, "0"), (1, 1, "1"), (2, 4, "2-4"), (5, 9, "5-9"), (10, None, "10+"))
_NAMESPACE = uuid.UUID("5b0c9a4e-6f1d-4e2a-9c3b-7d8e1f2a3b4c")


@dataclass
class WriterRun:
    writer: int
    drawings: int = 0
    alone_right: int = 0  # the model alone read it right
    adapted_right: int = 0  # with what this writer corrected before
    harmed: int = 0  # right alone, wrong with adaptation
    corrections: int = 0
    # (corrections of this digit so far, read right with adaptation) per drawing
    steps: list[tuple[int, bool]] = field(default_factory=list)


@dataclass
class OnlineReport:
    model: str
    seed: int
    correct_share: float
    writers: list[WriterRun]

    def _total(self, name: str) -> int:
        return sum(getattr(w, name) for w in self.writers)

    @property
    def drawings(self) -> int:
        return self._total("drawings")

    @property
    def alone(self) -> float:
        return self._total("alone_right") / max(self.drawings, 1)

    @property
    def adapted(self) -> float:
        return self._total("adapted_right") / max(self.drawings, 1)

    @property
    def harm(self) -> float:
        return self._total("harmed") / max(self.drawings, 1)

    def curve(self) -> dict[str, float | None]:
        steps = [s for w in self.writers for s in w.steps]
        out: dict[str, float | None] = {}
        for low, high, name in CURVE:
            hits = [right for k, right in steps if k >= low and (high is None or k <= high)]
            out[name] = sum(hits) / len(hits) if hits else None
        return out

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "seed": self.seed,
            "correct_share": self.correct_share,
            "drawings": self.drawings,
            "accuracy_alone": self.alone,
            "accuracy_adapted": self.adapted,
            "harm": self.harm,
            "harmed": self._total("harmed"),
            "corrections": self._total("corrections"),
            "per_writer": {
                str(w.writer): {
                    "drawings": w.drawings,
                    "alone": w.alone_right / max(w.drawings, 1),
                    "adapted": w.adapted_right / max(w.drawings, 1),
                    "corrections": w.corrections,
                    "harmed": w.harmed,
                }
                for w in self.writers
            },
            "curve": self.curve(),
        }

    def table(self) -> str:
        corrected = "every" if self.correct_share >= 1 else f"{100 * self.correct_share:.0f} % of the"
        lines = [
            f"Online, {self.drawings} drawings of {len(self.writers)} held-out writers, one user each, "
            f"{corrected} wrong or rejected answer corrected (seed {self.seed})",
            f"{'writer':>8}{'drawings':>10}{'alone':>10}{'adapted':>10}{'corrections':>13}{'harmed':>8}",
        ]
        for w in self.writers:
            lines.append(
                f"{w.writer:>8}{w.drawings:>10}{100 * w.alone_right / w.drawings:>9.2f}%"
                f"{100 * w.adapted_right / w.drawings:>9.2f}%{w.corrections:>13}{w.harmed:>8}"
            )
        lines.append(
            f"{'all':>8}{self.drawings:>10}{100 * self.alone:>9.2f}%{100 * self.adapted:>9.2f}%"
            f"{self._total('corrections'):>13}{self._total('harmed'):>8}"
        )
        worst = min(self.writers, key=lambda w: w.adapted_right / w.drawings)
        weakest = 100 * worst.adapted_right / worst.drawings
        lines.append(
            f"weakest writer with adaptation: {worst.writer}, {weakest:.2f} %; harm: {self._total('harmed')} "
            f"drawings read right alone and wrong adapted ({100 * self.harm:.2f} %)"
        )
        curve = "  ".join(f"{k}: {'–' if v is None else f'{100 * v:.1f} %'}" for k, v in self.curve().items())
        lines.append(f"accuracy after this many corrections of the same digit by its writer: {curve}")
        return "\n".join(lines)


def _data_url(image) -> str:
    return "data:image/png;base64," + base64.b64encode(to_png(image)).decode()


def run_online(
    model: str | None,
    writers: Sequence[int] = pendigits.HELDOUT_WRITERS,
    *,
    seed: int = 0,
    correct_share: float = 1.0,
    database: str | None = None,
) -> OnlineReport:
    """Every writer's digits in a seeded order through ``/predict`` and ``/feedback`` of a fresh app."""
    from draw2digit_app import create_app

    digits = pendigits.load_pendigits()
    with tempfile.TemporaryDirectory() as tmp:
        config = {
            "MODEL": model,
            "FEEDBACK_DB": database or str(Path(tmp) / "online.sqlite3"),
            "FEEDBACK_LIMIT": "off",
            "TESTING": True,
        }
        client = create_app(config).test_client()
        runs = [
            _one_writer(client, pendigits.by_writers(digits, [w]), w, seed, correct_share) for w in writers
        ]
    return OnlineReport(str(model or "models/"), seed, correct_share, runs)


def _one_writer(client, digits, writer: int, seed: int, share: float) -> WriterRun:
    order = np.random.default_rng([seed, writer]).permutation(len(digits))
    corrects = np.random.default_rng([seed, writer, 1])  # apart, so the order is the same for any share
    ordered = [digits[i] for i in order]
    user = str(uuid.uuid5(_NAMESPACE, f"writer-{writer}-seed-{seed}"))
    run = WriterRun(writer)
    corrected = [0] * 10
    for digit, drawing in zip(ordered, pen_drawings(ordered, seed=seed + writer), strict=True):
        image = _data_url(drawing)
        answer = _post(client, "/predict", {"image": image, "user": user, "final": True})
        alone = answer["model_digit"] if answer.get("personalized") else answer["digit"]
        right, right_alone = answer["digit"] == digit.label, alone == digit.label
        run.drawings += 1
        run.alone_right += right_alone
        run.adapted_right += right
        run.harmed += right_alone and not right
        run.steps.append((corrected[digit.label], right))
        if not right and corrects.random() < share:
            _post(client, "/feedback", {"image": image, "label": digit.label, "user": user})
            corrected[digit.label] += 1
            run.corrections += 1
    return run


def _post(client, path: str, body: dict) -> dict:
    response = client.post(path, json=body)
    client.application.extensions[PERSONAL].flush()  # what a person takes seconds for: the answer is kept
    if response.status_code >= 300:
        raise RuntimeError(f"{path} answered {response.status_code}: {response.get_json()}")
    return response.get_json()

"""The notebook drawing pad: ipycanvas in, the library's Predictor out.

The pad keeps the strokes itself, from the mouse and touch events, and renders
them with :func:`draw2digit.canvas.render_strokes` for the model. It never
reads pixels back from the browser, which sidesteps ipycanvas' known traps:
``image_data`` is empty until the browser syncs it, and a pad whose browser tab
is gone never answers. The canvas in the page is only the user's view, redrawn
in full whenever a browser (JupyterLab or Voila) reports ready, since draw
commands sent before that are lost.
"""

from __future__ import annotations

import html
import io

import ipywidgets as widgets
import numpy as np
from ipycanvas import Canvas, hold_canvas
from PIL import Image

from draw2digit.canvas import render_strokes
from draw2digit.decode import ImageInput, PreprocessError
from draw2digit.feedback import FeedbackStore
from draw2digit.predictor import NumberPrediction, Prediction, Predictor

Point = tuple[float, float]

_CSS = """
<style>
.d2d-pad { gap: 24px; align-items: flex-start; flex-wrap: wrap; }
.d2d-canvas { border: 2px solid #c9d1d9; border-radius: 10px; background: #fff; cursor: crosshair;
  touch-action: none; }
.d2d-digit, .d2d-digit .widget-html-content { font-size: 72px; font-weight: 700; color: #1f5fbf;
  line-height: 84px; height: 84px; overflow: visible; }
.d2d-prompt { color: #57606a; font-size: 16px; }
.d2d-error { color: #a4161a; }
.d2d-bars { font-family: system-ui, sans-serif; font-size: 13px; }
.d2d-bars .row { display: grid; grid-template-columns: 14px 160px 56px; gap: 6px; align-items: center; }
.d2d-bars .track { height: 10px; background: #eef1f4; border-radius: 5px; overflow: hidden; }
.d2d-bars .fill { height: 100%; background: #8fb0e3; }
.d2d-bars .top .fill { background: #1f5fbf; }
.d2d-bars .top { font-weight: 700; }
.d2d-preview img, img.d2d-preview { image-rendering: pixelated; border: 1px solid #c9d1d9; border-radius: 6px;
  background: #000; }
.d2d-seen { align-items: center; gap: 12px; }
.d2d-caption { color: #57606a; font-size: 13px; }
</style>
"""


class DrawingPad(widgets.HBox):
    """Draw a digit; see the digit, its confidence, all ten probabilities and the 28x28 input.

    Use ``DrawingPad()`` in a notebook cell. For scripts and tests the same path
    is open without a browser: :meth:`draw` adds strokes, :meth:`show_image`
    predicts any image, :meth:`undo` and :meth:`clear` do what the buttons do.
    """

    def __init__(
        self,
        predictor: Predictor | None = None,
        size: int = 280,
        brush: int = 18,
        feedback: FeedbackStore | None = None,
    ):
        self.predictor = predictor if predictor is not None else Predictor()
        self.feedback = feedback if feedback is not None else FeedbackStore()
        self.size = size
        self.strokes: list[tuple[float, list[Point]]] = []  # (width, points)
        self._current: tuple[float, list[Point]] | None = None
        self.prediction: Prediction | None = None
        self.number: NumberPrediction | None = None  # the result in number mode
        self.error: str | None = None

        self.canvas = Canvas(
            width=size, height=size, layout=widgets.Layout(width=f"{size}px", height=f"{size}px")
        )
        self.canvas.add_class("d2d-canvas")
        self.brush = widgets.IntSlider(
            value=brush, min=6, max=40, description="Brush", layout=widgets.Layout(width=f"{size}px")
        )
        self.undo_button = widgets.Button(description="Undo", icon="undo", tooltip="Remove the last stroke")
        self.clear_button = widgets.Button(description="Clear", icon="trash", tooltip="Start again")
        self.mode = widgets.ToggleButtons(
            options=[("One digit", "digit"), ("A number", "number")],
            value="digit",
            style={"button_width": "auto"},
        )
        self.mode.add_class("d2d-mode")
        self.mode.observe(self._mode_changed, names="value")
        self.undo_button.add_class("d2d-undo")
        self.clear_button.add_class("d2d-clear")
        self.digit = widgets.HTML(layout=widgets.Layout(height="84px", min_width="64px"))
        self.digit.add_class("d2d-digit")
        self.confidence = widgets.HTML()
        self.confidence.add_class("d2d-confidence")
        self.bars = widgets.HTML()
        # The model's 28x28 at 4x, pixelated, beside its caption as on the page; wider in number mode.
        self.preview = widgets.Image(format="png", layout=widgets.Layout(height="112px", width="112px"))
        self.preview.add_class("d2d-preview")
        self.explain = widgets.Checkbox(value=False, description="Show why", indent=False)
        self.explain.add_class("d2d-explain")
        self.explain.observe(lambda _: self._show(), names="value")

        self.correct_buttons = [
            widgets.Button(description=str(d), layout=widgets.Layout(width="30px")) for d in range(10)
        ]
        for d, button in enumerate(self.correct_buttons):
            button.add_class(f"d2d-correct-{d}")
            button.on_click(lambda _, d=d: self.correct(d))
        self.correct_status = widgets.HTML()
        self.correction_row = widgets.VBox(
            [
                widgets.HBox([widgets.HTML("Wrong? It is a:&nbsp;"), *self.correct_buttons]),
                self.correct_status,
            ]
        )
        self.correction_row.layout.display = "none"

        self.canvas.on_client_ready(self._replay)
        self.canvas.on_mouse_down(self._start)
        self.canvas.on_mouse_move(self._extend)
        self.canvas.on_mouse_up(self._finish)
        self.canvas.on_mouse_out(self._finish)
        self.canvas.on_touch_start(lambda touches: touches and self._start(*touches[0]))
        self.canvas.on_touch_move(lambda touches: touches and self._extend(*touches[0]))
        self.canvas.on_touch_end(lambda touches: self._finish())
        self.canvas.on_touch_cancel(lambda touches: self._finish())
        self.undo_button.on_click(lambda _: self.undo())
        self.clear_button.on_click(lambda _: self.clear())

        caption = widgets.HTML(
            '<span class="d2d-caption"><b>What the network sees</b><br>28×28 pixels</span>'
        )
        self.seen = widgets.HBox([self.preview, widgets.VBox([caption, self.explain])])
        self.seen.add_class("d2d-seen")
        left = widgets.VBox(
            [self.mode, self.canvas, self.brush, widgets.HBox([self.undo_button, self.clear_button])]
        )
        right = widgets.VBox(
            [
                widgets.HBox([self.digit, self.confidence], layout=widgets.Layout(align_items="center")),
                self.bars,
                self.seen,
                self.correction_row,
            ],
            layout=widgets.Layout(max_width="100%"),
        )
        super().__init__([widgets.HTML(_CSS), left, right])
        self.add_class("d2d-pad")
        self._show()

    # ---------------------------------------------------------------- strokes

    def _start(self, x: float, y: float) -> None:
        self._current = (float(self.brush.value), [(float(x), float(y))])
        self._paint(self._current, [(x, y)])

    def _extend(self, x: float, y: float) -> None:
        if self._current is None:
            return
        points = self._current[1]
        points.append((float(x), float(y)))
        self._paint(self._current, points[-2:])  # events come in batches: draw only what is new

    def _finish(self, x: float | None = None, y: float | None = None) -> None:
        if self._current is None:
            return
        if x is not None and y is not None:
            self._extend(x, y)
        self.strokes.append(self._current)
        self._current = None
        self.update()

    def draw(self, strokes: list[list[Point]], width: float | None = None) -> Prediction | None:
        """Add strokes (lists of (x, y) in canvas pixels) as if drawn, then predict."""
        for points in strokes:
            stroke = (float(width or self.brush.value), [(float(x), float(y)) for x, y in points])
            self.strokes.append(stroke)
            self._paint(stroke, stroke[1])
        return self.update()

    def undo(self) -> Prediction | None:
        if self.strokes:
            self.strokes.pop()
        self._replay()
        return self.update()

    def clear(self) -> None:
        self.strokes.clear()
        self._current = None
        self._replay()
        self.update()

    # ---------------------------------------------------------------- prediction

    def image(self) -> Image.Image:
        """The drawing as the model's input source: black ink on a transparent canvas."""
        size = (self.canvas.width, self.canvas.height)
        return render_strokes([s[1] for s in self.strokes], size, 1, widths=[s[0] for s in self.strokes])

    def update(self) -> Prediction | NumberPrediction | None:
        """Predict the current drawing and show it; a blank pad shows a prompt."""
        self.prediction, self.number, self.error = None, None, None
        if self.strokes and self.mode.value == "number":
            self.number = self.predictor.predict_number(self.image())
            self._replay()  # strokes plus the boxes around the digits found
        elif self.strokes:
            self._predict(self.image())
        self._show()
        return self.number if self.mode.value == "number" else self.prediction

    def _mode_changed(self, change) -> None:
        """Number mode gets a wider pad: several digits side by side need the room."""
        wide = change["new"] == "number"
        width = int(self.size * 2.2) if wide else self.size
        self.canvas.width = width
        self.canvas.layout.width = f"{width}px"
        self.brush.layout.width = f"{width}px"
        self._replay()
        self.update()

    def show_image(self, source: ImageInput) -> Prediction | None:
        """Predict any image (file, bytes, array...) and show the result beside the pad."""
        self._predict(source)
        self._show()
        return self.prediction

    def correct(self, label: int) -> int | None:
        """Store the drawing with the digit it really is, for ``draw2digit finetune``."""
        predicted = self.prediction.digit if self.prediction is not None else None
        try:
            new_id = self.feedback.add(self.image(), label, predicted)
        except (PreprocessError, ValueError, OSError) as exc:
            self.correct_status.value = f'<span class="d2d-error">Not saved: {html.escape(str(exc))}</span>'
            return None
        self.correct_status.value = f"Thank you: saved as a {label} (correction #{new_id})."
        return new_id

    def _predict(self, source: ImageInput) -> None:
        try:
            self.prediction, self.error = self.predictor.predict(source), None
        except PreprocessError as exc:
            self.prediction, self.error = None, str(exc)

    # ---------------------------------------------------------------- view

    def _paint(self, stroke: tuple[float, list[Point]], points: list[Point]) -> None:
        width, _ = stroke
        with hold_canvas():
            self.canvas.stroke_style = "black"
            self.canvas.fill_style = "black"
            self.canvas.line_width = width
            self.canvas.line_cap = "round"
            self.canvas.line_join = "round"
            if len(points) == 1:
                self.canvas.fill_circle(points[0][0], points[0][1], width / 2)
            else:
                self.canvas.stroke_lines(points)

    def _replay(self) -> None:
        """Redraw everything: for a browser that has just connected, or after undo/clear."""
        with hold_canvas():
            self.canvas.clear()
            for stroke in self.strokes:
                self._paint(stroke, stroke[1])
            if self.number is not None and self.mode.value == "number":
                self.canvas.stroke_style = "#1f5fbf"
                self.canvas.fill_style = "#1f5fbf"
                self.canvas.line_width = 2
                self.canvas.font = "12px sans-serif"
                for d in self.number.digits:
                    left, top, right, bottom = d.box
                    self.canvas.stroke_rect(left - 4, top - 4, right - left + 8, bottom - top + 8)
                    self.canvas.fill_text(str(d.digit), left - 4, max(12, top - 7))

    def _show(self) -> None:
        shows_digit = self.mode.value == "digit" and self.prediction is not None and not self.prediction.blank
        self.correction_row.layout.display = "" if shows_digit and self.strokes else "none"
        if not shows_digit:
            self.correct_status.value = ""
        if self.mode.value == "number" and self.number is not None and not self.number.blank:
            n = self.number
            self.digit.value = n.number
            least = min(d.confidence for d in n.digits)
            self.confidence.value = f"{len(n.digits)} digit(s), least sure {100 * least:.0f} %"
            self.bars.value = " ".join(f"<b>{d.digit}</b> {100 * d.confidence:.0f}%" for d in n.digits)
            self.preview.layout.width = f"{min(112 * len(n.digits), 336)}px"  # fits a phone
            self.preview.layout.height = "auto"
            self.preview.value = _png(np.hstack([d.image for d in n.digits]), scale=4)
            return
        self.preview.layout.width = self.preview.layout.height = "112px"
        p = self.prediction
        if self.error:
            self.digit.value = ""
            self.confidence.value = (
                f'<span class="d2d-error">Could not read that: {html.escape(self.error)}</span>'
            )
            probs, top = [0.0] * 10, -1
        elif p is None or p.blank:
            self.digit.value = ""
            if self.mode.value == "number":
                message = "Write a number: digits side by side."
            else:
                message = "That is too small to read. Draw a bigger digit." if p else "Draw a digit to begin."
            self.confidence.value = f'<span class="d2d-prompt">{message}</span>'
            probs, top = [0.0] * 10, -1
        elif p.rejected:
            self.digit.value = "?"
            reason = html.escape(p.reason or "")
            self.confidence.value = (
                f'<span class="d2d-prompt">That doesn&#39;t look like a digit ({reason}).</span>'
            )
            probs, top = list(p.probabilities), -1
        else:
            self.digit.value = str(p.digit)
            self.confidence.value = f"{100 * p.confidence:.1f} % confident"
            probs, top = list(p.probabilities), p.digit
        self.bars.value = _bars_html(probs, top)
        image = p.image if p is not None else np.zeros((28, 28), np.float32)
        if self.explain.value and p is not None and not p.blank:
            from draw2digit.explain import overlay_png

            self.preview.value = overlay_png(p.image, self.predictor.saliency(p))
        else:
            self.preview.value = _png(image)


def _bars_html(probs: list[float], top: int) -> str:
    rows = []
    for d, v in enumerate(probs):
        pct = 100 * v
        cls = "row top" if d == top else "row"
        rows.append(
            f'<div class="{cls}"><span>{d}</span><span class="track"><div class="fill" '
            f'style="width:{pct:.1f}%"></div></span><span>{pct:.1f}%</span></div>'
        )
    return '<div class="d2d-bars">' + "".join(rows) + "</div>"


def _png(image: np.ndarray, scale: int = 4) -> bytes:
    buf = io.BytesIO()
    h, w = image.shape
    Image.fromarray(np.uint8(np.clip(image, 0, 1) * 255)).resize((w * scale, h * scale), Image.NEAREST).save(
        buf, "PNG"
    )
    return buf.getvalue()

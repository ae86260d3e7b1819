"""The notebook drawing pad: ipycanvas in, the library's Predictor out.

The pad keeps the strokes itself, from the mouse and touch events, and renders
them with :func:`draw2digit.canvas.render_strokes` for the model. It never
reads pixels back from the browser, which sidesteps ipycanvas' known traps:
``image_data`` is empty until the browser syncs it, and a pad whose browser tab
is gone never answers. The canvas in the page is only the user's view, redrawn
in full whenever a browser (JupyterLab or Voila) reports ready, since draw
commands sent before that are lost.

It behaves as the web page does: the same keys, strokes fitted to a reshaped
pad, corrections, number mode, "Show why", and learning its user's handwriting.
"""

from __future__ import annotations

import html
import os
import uuid

import ipywidgets as widgets
import numpy as np
from ipycanvas import Canvas, hold_canvas
from PIL import Image

from draw2digit.canvas import fit_strokes, percent, render_strokes
from draw2digit.decode import ImageInput, PreprocessError
from draw2digit.explain import overlay_png
from draw2digit.feedback import FeedbackStore, StoreUnavailable
from draw2digit.history import History
from draw2digit.personal import Personal, Personalizer
from draw2digit.predictor import NumberPrediction, Prediction, Predictor
from draw2digit.ratelimit import (
    DATABASE,
    ENV_FEEDBACK_LIMIT,
    ENV_RATELIMIT_STORAGE,
    FEEDBACK_LIMIT,
    Limiter,
    storage_for,
)
from draw2digit.widget_assets import _CSS, ShortcutKeys, bars_html, pct_html, png, read_piece, why_panel

Point = tuple[float, float]
Stroke = tuple[float, list[Point]]  # (pen width, points)
UNSURE = 0.8  # below this confidence the correction digits open by themselves, as on the page


class DrawingPad(widgets.HBox):
    """Draw a digit; see the digit, its confidence, all ten probabilities and the 28x28 input.

    Use ``DrawingPad()`` in a notebook cell. For scripts and tests the same path
    is open without a browser: :meth:`draw` adds strokes, :meth:`show_image`
    predicts any image, :meth:`undo`, :meth:`redo` and :meth:`clear` do what
    the buttons and keys do, :meth:`correct` what the digit buttons do.
    """

    def __init__(
        self,
        predictor: Predictor | None = None,
        size: int = 280,
        brush: int = 18,
        feedback: FeedbackStore | None = None,
        feedback_limit: str | None = None,
    ):
        self.predictor = predictor if predictor is not None else Predictor()
        self.feedback = feedback if feedback is not None else FeedbackStore()
        # One client per pad (a Voila visitor's kernel), limited as the page's address is.
        self.client = f"pad:{uuid.uuid4()}"
        self.user = str(uuid.uuid4())  # one per kernel session: the pad learns this person's handwriting
        self.personal = Personalizer.for_predictor(self.feedback, self.predictor)
        self.answer: Personal | None = None  # the answer shown, and what the model alone said
        limit = feedback_limit or os.environ.get(ENV_FEEDBACK_LIMIT) or FEEDBACK_LIMIT
        storage = os.environ.get(ENV_RATELIMIT_STORAGE) or DATABASE
        self._limiter = Limiter(limit, storage_for(storage, self.feedback), "pad-feedback")
        self.size = size
        self.history: History[list[Stroke]] = History([])
        self._current: Stroke | None = None
        self.prediction: Prediction | None = None
        self.number: NumberPrediction | None = None  # the result in number mode
        self.number_notes: list[str] = []  # which of its digits this person taught, and how
        self.error: str | None = None
        self.piece: int | None = None  # the digit of a number being corrected
        self._saved: set = set()  # what was stored for the drawing now on the pad ("digit" or positions)

        self.canvas = Canvas(width=size, height=size, layout=widgets.Layout(width="100%", height="auto"))
        self.canvas.add_class("d2d-canvas")
        self.brush = widgets.IntSlider(
            value=brush, min=6, max=40, description="Brush", layout=widgets.Layout(width="100%")
        )
        self.undo_button = widgets.Button(description="Undo", icon="undo", tooltip="Undo (Ctrl+Z)")
        self.redo_button = widgets.Button(
            description="Redo", icon="repeat", tooltip="Redo (Ctrl+Shift+Z or Ctrl+Y)"
        )
        self.clear_button = widgets.Button(
            description="Clear", icon="trash", tooltip="Start again (Esc; Ctrl+Z brings it back)"
        )
        for b in (self.undo_button, self.redo_button, self.clear_button):
            b.layout = widgets.Layout(width="auto", min_height="44px")
        self.mode = widgets.ToggleButtons(
            options=[("One digit", "digit"), ("A number", "number")],
            value="digit",
            style={"button_width": "auto"},
        )
        self.mode.add_class("d2d-mode")
        self.mode.observe(self._mode_changed, names="value")
        self.undo_button.add_class("d2d-undo")
        self.redo_button.add_class("d2d-redo")
        self.clear_button.add_class("d2d-clear")
        self.shortcuts = ShortcutKeys()
        self.shortcuts.on_msg(self._key)
        self.digit = widgets.HTML(layout=widgets.Layout(height="84px", min_width="64px"))
        self.digit.add_class("d2d-digit")
        self.digit.observe(self._fit_digit, "value")
        self.confidence = widgets.HTML()
        self.confidence.add_class("d2d-confidence")
        self.bars = widgets.HTML()
        # The model's 28x28 at 4x, pixelated, beside its caption as on the page; wider in number mode.
        self.preview = widgets.Image(format="png", layout=widgets.Layout(height="112px", width="112px"))
        self.preview.add_class("d2d-preview")
        self.explain = widgets.Checkbox(value=False, description="Show why", indent=False)
        self.explain.add_class("d2d-explain")
        self.explain.observe(lambda _: self._show(), names="value")

        # "Show why": the input and what the answer rests on side by side, 240 px each, with a legend.
        self.why_input, self.why_map, self.why_title, self.why_caption, self.why_status, self.why = (
            why_panel()
        )

        # Corrections: behind "Not right?" (open by itself when unsure), 44 px targets, the choice shown.
        self.not_right = widgets.ToggleButton(
            value=False,
            description="Not right?",
            layout=widgets.Layout(width="auto", min_height="44px", align_self="flex-start"),
        )
        self.not_right.add_class("d2d-not-right")
        self.not_right.observe(lambda _: self._show_correction(), names="value")
        self.pieces = widgets.ToggleButtons(options=[], value=None, style={"button_width": "auto"})
        self.pieces.add_class("d2d-pieces")
        self.pieces.observe(self._piece_chosen, names="value")
        self.correct_label = widgets.HTML("It is a:")
        # 0-9, then "Not a digit" (label None: stored as such, kept out of digit fine-tuning)
        self.correct_buttons = [widgets.Button(description=str(d)) for d in range(10)]
        self.correct_buttons.append(widgets.Button(description="Not a digit"))
        for d, button in enumerate(self.correct_buttons):
            button.add_class(f"d2d-correct-{d}" if d < 10 else "d2d-correct-none")
            button.on_click(lambda _, d=d: self._correct_clicked(d if d < 10 else None))
        self.correct_grid = widgets.Box(self.correct_buttons)
        self.correct_grid.add_class("d2d-correct-buttons")
        self.correct_panel = widgets.VBox([self.correct_label, self.correct_grid])
        self.correct_status = widgets.HTML()
        self.correct_status.add_class("d2d-correct-status")
        self.correction_row = widgets.VBox(
            [self.not_right, self.pieces, self.correct_panel, self.correct_status]
        )
        self.correction_row.add_class("d2d-correction")
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
        self.redo_button.on_click(lambda _: self.redo())
        self.clear_button.on_click(lambda _: self.clear())
        self.forget_button = widgets.Button(
            description="Forget my handwriting", layout=widgets.Layout(width="auto", min_height="44px")
        )
        self.forget_button.add_class("d2d-forget")
        self.forget_button.on_click(lambda _: self.forget())
        self.forget_status = widgets.HTML()

        self.seen_caption = widgets.HTML()
        self.seen = widgets.HBox([self.preview, widgets.VBox([self.seen_caption, self.explain])])
        self.seen.add_class("d2d-seen")
        buttons = widgets.HBox([self.undo_button, self.redo_button, self.clear_button])
        buttons.layout.flex_flow = "row wrap"
        # The pad fits the window: the canvas is 100% of a column at most `size` pixels wide.
        self.left = widgets.VBox(
            [
                self.mode,
                self.canvas,
                self.brush,
                buttons,
                self.forget_button,
                self.forget_status,
                self.shortcuts,
            ],
            layout=widgets.Layout(width="100%", max_width=f"{size + 4}px"),
        )
        self.left.add_class("d2d-left")
        right = widgets.VBox(
            [
                widgets.HBox([self.digit, self.confidence], layout=widgets.Layout(align_items="center")),
                self.bars,
                self.seen,
                self.correction_row,
            ],
            layout=widgets.Layout(flex="1 1 300px", min_width="0", max_width="100%"),
        )
        super().__init__([widgets.HTML(_CSS), self.left, right, self.why])
        self.add_class("d2d-pad")
        self._show()

    @property
    def strokes(self) -> list[Stroke]:
        """The drawing on the pad now, oldest stroke first."""
        return self.history.present

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
        stroke, self._current = self._current, None
        self._commit([*self.strokes, stroke])

    def _commit(self, strokes: list[Stroke]) -> Prediction | NumberPrediction | None:
        self.history.push(strokes)
        return self._changed()

    def _changed(self) -> Prediction | NumberPrediction | None:
        """The drawing is different: forget what was corrected, redraw, read it again."""
        self._saved.clear()
        self.correct_status.value = ""
        self.not_right.value = False
        self.number = None  # its boxes belong to the old drawing
        self._replay()
        return self.update()

    def draw(self, strokes: list[list[Point]], width: float | None = None) -> Prediction | None:
        """Add strokes (lists of (x, y) in canvas pixels) as if drawn, then predict."""
        pen = float(width or self.brush.value)
        added = [(pen, [(float(x), float(y)) for x, y in points]) for points in strokes]
        return self._commit([*self.strokes, *added])

    def undo(self) -> Prediction | None:
        """One step back; Clear is a step too, so undo brings a cleared drawing back."""
        if self.history.undo():
            return self._changed()
        return self.prediction

    def redo(self) -> Prediction | None:
        if self.history.redo():
            return self._changed()
        return self.prediction

    def clear(self) -> None:
        self._current = None
        p = self.prediction
        if (
            p is not None
            and not p.blank
            and not p.rejected
            and not self._saved
            and self.mode.value == "digit"
        ):
            self._remember(p, p.digit, corrected=False)  # finished and not corrected: what they meant
        if self.strokes:
            self._commit([])
        else:
            self._replay()

    def _key(self, _widget, content, _buffers) -> None:
        action = content.get("action") if isinstance(content, dict) else None
        if action == "ping":  # the page checks that this kernel still answers
            self.shortcuts.send({"pong": True})
        if action in ("undo", "redo", "clear"):
            getattr(self, action)()

    # ---------------------------------------------------------------- prediction

    def image(self) -> Image.Image:
        """The drawing as the model's input source: black ink on a transparent canvas."""
        size = (self.canvas.width, self.canvas.height)
        return render_strokes([s[1] for s in self.strokes], size, 1, widths=[s[0] for s in self.strokes])

    def update(self) -> Prediction | NumberPrediction | None:
        """Predict the current drawing and show it; a blank pad shows a prompt."""
        self.prediction, self.number, self.error, self.number_notes = None, None, None, []
        if self.strokes and self.mode.value == "number":
            self._predict_number()
            self._replay()  # strokes plus the boxes around the digits found
        elif self.strokes:
            self._predict(self.image())
        self._show()
        return self.number if self.mode.value == "number" else self.prediction

    def _mode_changed(self, change) -> None:
        """Number mode gets a wider pad; the strokes are fitted onto the new pad, so what is read is seen."""
        old = (self.canvas.width, self.canvas.height)
        width = int(self.size * 2.2) if change["new"] == "number" else self.size
        new = (width, self.size)
        self.history.map(lambda strokes: fit_strokes(strokes, old, new))
        self.canvas.width = width
        self.left.layout.max_width = f"{width + 4}px"
        self._changed()

    def show_image(self, source: ImageInput) -> Prediction | None:
        """Predict any image (file, bytes, array...) and show the result beside the pad."""
        self._predict(source)
        self._show()
        return self.prediction

    def correct(self, label: int | None, position: int | None = None) -> int | None:
        """Store the drawing with the digit it really is (None: not a digit), for ``draw2digit finetune``.

        In number mode ``position`` says which digit of the number (0 = leftmost).
        The digit the model read is not a correction: nothing is stored then.
        """
        piece = None
        if position is not None:
            if self.number is None or not 0 <= position < len(self.number.digits):
                self._status("error", "Choose one of the digits found first.")
                return None
            d = self.number.digits[position]
            piece, predicted, said_none = d, d.digit, d.rejected
        else:
            p = self.prediction
            predicted = p.digit if p is not None and not p.rejected else None
            said_none = p is not None and p.rejected
        key = "digit" if position is None else position
        if key in self._saved:
            return None  # a double click saves once
        if said_none if label is None else label == predicted:
            self._status("ok", "That is what it read: nothing to correct. Thank you for checking.")
            return None
        wait = self._limiter.hit(self.client)
        if wait:
            self._status("error", f"Too many corrections, try again in {max(1, int(wait))} s.")
            return None
        try:
            new_id = self.feedback.add(self.image(), label, predicted, piece=piece, client=self.client)
        except (PreprocessError, ValueError, OSError) as exc:
            self._status("error", f"Not saved: {exc}")
            return None
        self._saved.add(key)
        said = "not a digit" if label is None else f"a {label}"
        what = f"digit {position + 1} saved as {said}" if position is not None else f"saved as {said}"
        seen = self.prediction if piece is None else self.predictor.predict_preprocessed([piece.piece])[0]
        if seen is not None and self._remember(seen, label, corrected=True) and label is not None:
            self.update()  # the answer shown follows at once
            self._status("ok", f"Learned: your {label} ({what}): drawings like this are read as {label} now.")
        else:
            self._status("ok", f"Thank you: {what} (correction #{new_id}).")
        self._show_correction()
        return new_id

    def _remember(self, prediction: Prediction, label: int | None, *, corrected: bool) -> bool:
        try:
            return self.personal.remember(self.user, prediction, label, corrected=corrected)
        except StoreUnavailable:
            return False

    def forget(self) -> int:
        """Remove what this pad's user taught (and their corrections); answers are the model's alone again."""
        try:
            removed = self.personal.forget(self.user)
        except StoreUnavailable as exc:
            self.forget_status.value = (
                f'<span class="d2d-error">Could not forget: {html.escape(str(exc))}</span>'
            )
            return 0
        self.forget_status.value = '<span class="d2d-ok">Forgotten: answers come from the model alone.</span>'
        if self.strokes:
            self.update()
        return removed

    def _correct_clicked(self, label: int | None) -> None:
        for d, b in enumerate(self.correct_buttons):
            b.button_style = "primary" if d == (10 if label is None else label) else ""
        self.correct(label, self.piece if self.mode.value == "number" else None)

    def _piece_chosen(self, change) -> None:
        self.piece = change["new"]
        self.correct_status.value = ""
        for b in self.correct_buttons:
            b.button_style = ""
        self._replay()
        self._show_correction()

    def _status(self, kind: str, text: str) -> None:
        self.correct_status.value = f'<span class="d2d-{kind}">{html.escape(text)}</span>'

    def _predict(self, source: ImageInput) -> None:
        self.answer = None
        try:
            prediction, self.error = self.predictor.predict(source), None
        except PreprocessError as exc:
            self.prediction, self.error = None, str(exc)
            return
        self.answer = self.personal.answer([prediction], self.user)[0]
        self.prediction = self.answer.prediction

    def _predict_number(self) -> None:
        (answer,) = self.personal.answer_numbers([self.predictor.predict_number(self.image())], self.user)
        self.number, self.number_notes = answer.prediction, answer.notes()

    # ---------------------------------------------------------------- view

    def _paint(self, stroke: Stroke, points: list[Point]) -> None:
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
        """Redraw everything: for a browser that has just connected, or after any change."""
        with hold_canvas():
            self.canvas.clear()
            for stroke in self.strokes:
                self._paint(stroke, stroke[1])
            if self.number is not None and self.mode.value == "number":
                self.canvas.font = "600 13px sans-serif"
                for i, d in enumerate(self.number.digits):
                    chosen = i == self.piece
                    colour = "#a4161a" if chosen else "#1f5fbf"
                    self.canvas.stroke_style = colour
                    self.canvas.fill_style = colour
                    self.canvas.line_width = 3 if chosen else 2
                    left, top, right, bottom = d.box
                    self.canvas.stroke_rect(left - 4, top - 4, right - left + 8, bottom - top + 8)
                    y = top - 7 if top - 7 >= 13 else top + 13  # inside the box when there is no room above
                    self.canvas.fill_text(str(d.digit), left - 1, y)

    def _show_correction(self) -> None:
        """Digit mode: "Not right?" opens the digits (by itself when unsure). Number mode: pick a digit."""
        number_mode = self.mode.value == "number"
        if number_mode:
            found = self.number is not None and not self.number.blank
            self.correction_row.layout.display = "" if found else "none"
            self.not_right.layout.display = "none"
            self.pieces.layout.display = ""
            chosen = self.piece is not None
            self.correct_panel.layout.display = "" if chosen else "none"
            if chosen and found:
                self.correct_label.value = f"Digit {self.piece + 1} of {len(self.number.digits)} is a:"
            elif found:
                self.correct_label.value = ""
                if not self.correct_status.value:
                    self.correct_status.value = (
                        '<span class="d2d-prompt">Wrong? Choose that digit, then what it is.</span>'
                    )
            saved = self.piece in self._saved
        else:
            p = self.prediction
            shown = p is not None and not p.blank and bool(self.strokes)
            self.correction_row.layout.display = "" if shown else "none"
            self.pieces.layout.display = "none"
            unsure = shown and (p.rejected or p.confidence < UNSURE)
            self.not_right.layout.display = "none" if unsure else ""
            self.correct_panel.layout.display = "" if unsure or self.not_right.value else "none"
            self.correct_label.value = "It is a:"
            saved = "digit" in self._saved
        for b in self.correct_buttons:
            b.disabled = saved

    def _fit_digit(self, change: dict) -> None:
        """A number of four digits or more takes a smaller font, so a phone shows all of it on one line."""
        if len(change["new"]) > 3:
            self.digit.add_class("d2d-long")
        else:
            self.digit.remove_class("d2d-long")

    def _show(self) -> None:
        number_mode = self.mode.value == "number"
        self.undo_button.disabled, self.redo_button.disabled = not self.history.past, not self.history.future
        self.clear_button.disabled = not self.strokes
        n = self.number if number_mode else None
        options = (
            []
            if n is None
            else [(f"{read_piece(d)} · {percent(d.confidence)}", i) for i, d in enumerate(n.digits)]
        )
        if list(self.pieces.options) != options:
            self.piece = None
            with self.pieces.hold_trait_notifications():
                self.pieces.options = options
                self.pieces.value = None
        self._show_correction()
        self.why.layout.display = "none"
        if number_mode and self.number is not None and not self.number.blank:
            n = self.number
            self.digit.value = "?" if n.rejected else "".join(read_piece(d) for d in n.digits)
            least = min(d.confidence for d in n.digits)
            odd = [str(d.position + 1) for d in n.digits if d.rejected]
            self.confidence.value = (
                "That doesn&#39;t look like a number: no digit in it."
                if n.rejected
                else f"Digit {' and '.join(odd)} doesn&#39;t look like a digit."
                if odd
                else f"{len(n.digits)} digit{'s' if len(n.digits) > 1 else ''}, least sure {pct_html(least)}"
            )
            for note in self.number_notes:
                self.confidence.value += f'<br><span class="d2d-taught">{html.escape(note)}</span>'
            pieces = (f"<b>{read_piece(d)}</b> {percent(d.confidence)}" for d in n.digits)
            self.bars.value = " ".join(f'<span class="d2d-piece">{piece}</span>' for piece in pieces)
            self._seen_layout(f"each digit, 28×28 pixels ({len(n.digits)} side by side)")
            self.preview.layout.width = f"{min(112 * len(n.digits), 336)}px"  # fits a phone
            self.preview.layout.height = "auto"
            self.preview.value = png(np.hstack([d.image for d in n.digits]), scale=4)
            return
        self.preview.layout.width = self.preview.layout.height = "112px"
        self._seen_layout("28×28 pixels")
        p = None if number_mode else self.prediction
        if self.error and not number_mode:
            self.digit.value = ""
            self.confidence.value = (
                f'<span class="d2d-error">Could not read that: {html.escape(self.error)}</span>'
            )
            probs, top = [0.0] * 10, -1
        elif p is None or p.blank:
            self.digit.value = ""
            if number_mode:
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
            self.confidence.value = f"{pct_html(p.confidence)} confident"
            probs, top = list(p.probabilities), p.digit
        if p is not None and self.answer is not None and self.answer.taught:
            self.confidence.value += f'<br><span class="d2d-taught">{html.escape(self.answer.note)}</span>'
        self.bars.value = bars_html(probs, top)
        image = p.image if p is not None else np.zeros((28, 28), np.float32)
        self.preview.value = png(image)
        if self.explain.value and p is not None and not p.blank:
            self._show_why(p)

    def _seen_layout(self, what: str) -> None:
        """Number mode: the strip of digits above its caption (a phone has no room beside it), no Show why."""
        number_mode = self.mode.value == "number"
        self.seen.layout.flex_flow = "column" if number_mode else "row"
        self.explain.layout.display = "none" if number_mode else ""
        self.seen_caption.value = f'<span class="d2d-caption"><b>What the network sees</b><br>{what}</span>'

    def _show_why(self, p: Prediction) -> None:
        """The input and what the answer rests on, side by side."""
        order = np.argsort(p.probabilities)[::-1]
        best, nxt = int(order[0]), int(order[1])
        self.why.layout.display = ""
        self.why_title.value = f"<h3>Why it reads {best}</h3>"
        self.why_input.value = png(p.image, scale=8)
        self.why_map.value = overlay_png(p.image, self.predictor.saliency(p), scale=8)
        self.why_status.value = ""
        self.why_caption.value = (
            '<span class="d2d-caption">Yellow pixels hold the answer '
            f"{best} up most, red ones less, grey ones not at all (each part painted over in turn). "
            f"Next most likely: {nxt}, "
            f"{pct_html(p.probabilities[nxt])}.</span>"
        )

"""What the notebook pad sends to the browser: its style sheet and its keyboard shortcuts."""

from __future__ import annotations

import io

import anywidget
import ipywidgets as widgets
import numpy as np
import traitlets
from PIL import Image

from draw2digit.canvas import percent

_CSS = """
<style>
.d2d-pad { gap: 24px; align-items: flex-start; flex-wrap: wrap; max-width: 100%; }
.d2d-left { min-width: 0; }
.d2d-canvas { border: 2px solid #6e7781; border-radius: 10px; background: #fff; cursor: crosshair;
  touch-action: none; height: auto !important; max-width: 100%; }
.d2d-canvas:focus-visible { outline: 3px solid #1f5fbf; outline-offset: 2px; }
.d2d-digit, .d2d-digit .widget-html-content { font-size: 72px; font-weight: 700; color: #1f5fbf;
  line-height: 84px; height: 84px; overflow: visible; white-space: nowrap; }
.d2d-digit.d2d-long, .d2d-digit.d2d-long .widget-html-content { font-size: 44px; }
.d2d-prompt { color: #57606a; font-size: 16px; }
.d2d-error { color: #a4161a; }
.d2d-ok { color: #1a7f37; }
.d2d-bars { font-family: system-ui, sans-serif; font-size: 13px; }
.d2d-bars .row { display: grid; grid-template-columns: 14px 160px 64px; gap: 6px; align-items: center;
  white-space: nowrap; }
.d2d-bars .track { height: 10px; background: #eef1f4; border-radius: 5px; overflow: hidden; }
.d2d-bars .fill { height: 100%; background: #8fb0e3; }
.d2d-bars .top .fill { background: #1f5fbf; }
.d2d-bars .top { font-weight: 700; }
.d2d-preview img, img.d2d-preview, .d2d-why img { image-rendering: pixelated; border: 1px solid #c9d1d9;
  border-radius: 6px; background: #000; }
.d2d-seen { align-items: center; gap: 12px; }
.d2d-caption { color: #57606a; font-size: 13px; }
.d2d-correct-buttons { display: grid !important; grid-template-columns: repeat(5, 44px); gap: 6px; }
.d2d-correct-buttons button.d2d-correct-none { grid-column: span 3; width: auto !important; }
.d2d-correct-buttons button { width: 44px !important; height: 44px !important; padding: 0 !important;
  font-size: 16px; }
.d2d-pieces .widget-toggle-button { min-height: 44px; min-width: 56px; }
.d2d-why-figures { gap: 16px; flex-wrap: wrap; }
.d2d-why figure { margin: 0; text-align: center; }
.d2d-legend { display: flex; align-items: center; gap: 8px; font-size: 13px; color: #57606a; }
.d2d-legend-bar { display: inline-block; width: 160px; height: 12px; border-radius: 6px;
  background: linear-gradient(90deg, #8c8c8c, #ff0000, #ffd900); }
.d2d-spinner { display: inline-block; width: 12px; height: 12px; border-radius: 50%;
  border: 3px solid #dbe7fb; border-top-color: #1f5fbf; animation: d2d-spin 0.8s linear infinite; }
@keyframes d2d-spin { to { transform: rotate(360deg); } }
.d2d-lost { flex-basis: 100%; padding: 10px 14px; border-radius: 10px; background: #fdecea; color: #a4161a;
  display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
.d2d-lost button { min-height: 44px; padding: 0 16px; }
.d2d-stale .d2d-digit, .d2d-stale .d2d-confidence, .d2d-stale .d2d-bars, .d2d-stale .d2d-preview {
  opacity: 0.35; filter: grayscale(1); }
.d2d-pct, .d2d-piece { white-space: nowrap; }
.d2d-pad button:focus-visible, .d2d-pad .d2d-canvas:focus-visible, .d2d-pad input:focus-visible,
.d2d-pad [tabindex]:focus-visible, .d2d-pad [contenteditable]:focus-visible {
  outline: 3px solid #1f5fbf !important; outline-offset: 2px; }
</style>
"""

# Keys for the pad, as on the page. ipycanvas' canvas swallows every key it sees (even Tab, which
# traps keyboard focus in it), so this listens first, in the capture phase, lets Tab leave the pad and
# turns the shortcuts into messages. It only acts inside its own pad (or on a page with one pad, as
# in Voila), so JupyterLab's own Esc and Ctrl+Z keep working elsewhere.
KEYS_ESM = """
export default {
  render({ model, el }) {
    const onKey = (e) => {
      const root = el.closest(".d2d-pad");
      if (!root) return;
      const active = document.activeElement;
      const inside = root.contains(active);
      const pads = document.querySelectorAll(".d2d-pad").length;
      const alone = (!active || active === document.body) && pads === 1;
      if (!inside && !alone) return;
      const onPad = active && active.classList && active.classList.contains("d2d-canvas");
      const key = (e.key || "").toLowerCase();
      const mod = e.ctrlKey || e.metaKey;
      let action = null;
      if (mod && (key === "y" || (key === "z" && e.shiftKey))) action = "redo";
      else if (mod && key === "z") action = "undo";
      // Esc clears, but not while a slider or button has focus: Esc belongs to it then
      else if (e.key === "Escape" && (onPad || !inside)) action = "clear";
      if (action) {
        e.preventDefault();
        e.stopImmediatePropagation();
        model.send({ action });
      } else if (onPad) {
        e.stopImmediatePropagation(); // Tab and the rest keep their usual meaning
      }
    };
    window.addEventListener("keydown", onKey, true);
    // A lost kernel or server leaves every widget dead without a word: ask the kernel every 2 s and,
    // when it has not answered for 6 s, grey the pad's answer and offer a reload (which starts a new one).
    let last = Date.now();
    const banner = document.createElement("div");
    banner.className = "d2d-lost";
    banner.setAttribute("role", "alert");
    banner.innerHTML = "<span>The app stopped answering: its kernel or the server is gone. " +
      "Reload to start again.</span> <button type='button' class='d2d-reload'>Reload</button>";
    banner.querySelector("button").addEventListener("click", () => location.reload());
    model.on("msg:custom", (msg) => {
      if (msg && msg.pong) {
        last = Date.now();
        banner.remove();
        const root = el.closest(".d2d-pad");
        if (root) root.classList.remove("d2d-stale");
      }
    });
    const ping = setInterval(() => {
      try {
        model.send({ action: "ping" });
      } catch (_) {
        /* the connection is gone: the silence below says so */
      }
      const root = el.closest(".d2d-pad");
      if (root && Date.now() - last > 6000 && !banner.isConnected) {
        root.classList.add("d2d-stale");
        root.prepend(banner);
      }
    }, 2000);
    // the pad's canvas gets an accessible name (ipycanvas gives it none)
    const name = () => {
      const root = el.closest(".d2d-pad");
      const pad = root && root.querySelector("canvas.d2d-canvas, .d2d-canvas canvas");
      if (pad && !pad.getAttribute("aria-label")) {
        pad.setAttribute("role", "img");
        pad.setAttribute("aria-label", "Drawing area: draw with mouse, finger or pen");
      }
    };
    name();
    const timer = setInterval(name, 1000);
    return () => {
      window.removeEventListener("keydown", onKey, true);
      clearInterval(timer);
      clearInterval(ping);
    };
  },
};
"""


class ShortcutKeys(anywidget.AnyWidget):
    """Invisible: sends ``{"action": "undo" | "redo" | "clear"}`` for the pad's keyboard shortcuts."""

    _esm = traitlets.Unicode(KEYS_ESM).tag(sync=True)


def pct_html(p: float) -> str:
    """A percentage that never wraps its "%" away from the number (the rule's space is a normal one)."""
    return f'<span class="d2d-pct">{percent(p)}</span>'


def bars_html(probs: list[float], top: int) -> str:
    rows = []
    for d, v in enumerate(probs):
        cls = "row top" if d == top else "row"
        rows.append(
            f'<div class="{cls}"><span>{d}</span><span class="track"><div class="fill" '
            f'style="width:{100 * v:.1f}%"></div></span><span>{percent(v)}</span></div>'
        )
    return '<div class="d2d-bars">' + "".join(rows) + "</div>"


def png(image: np.ndarray, scale: int = 4) -> bytes:
    buf = io.BytesIO()
    h, w = image.shape
    Image.fromarray(np.uint8(np.clip(image, 0, 1) * 255)).resize((w * scale, h * scale), Image.NEAREST).save(
        buf, "PNG"
    )
    return buf.getvalue()


def read_piece(d) -> str:
    """A digit of a number as shown: "?" where the piece does not look like a digit."""
    return "?" if d.rejected else str(d.digit)


def why_panel():
    """The "Show why" widgets: (input image, map image, title, caption, status, the panel), hidden."""
    size = widgets.Layout(width="240px", height="240px")
    seen, rests = widgets.Image(format="png", layout=size), widgets.Image(format="png", layout=size)
    seen.add_class("d2d-why-input")
    rests.add_class("d2d-why-map")
    title, caption, status = widgets.HTML(), widgets.HTML(), widgets.HTML()
    caption.add_class("d2d-why-caption")
    status.add_class("d2d-why-status")
    legend = widgets.HTML(
        '<div class="d2d-legend">not needed <span class="d2d-legend-bar"></span> needed most</div>'
    )
    legend.add_class("d2d-why-legend")

    def figure(image, text: str):
        return widgets.VBox([image, widgets.HTML(f'<span class="d2d-caption">{text}</span>')])

    figures = widgets.HBox([figure(seen, "What the network sees"), figure(rests, "What its answer rests on")])
    panel = widgets.VBox([title, status, figures.add_class("d2d-why-figures"), legend, caption])
    panel.add_class("d2d-why")
    panel.layout.display = "none"
    return seen, rests, title, caption, status, panel

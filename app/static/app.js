// Draw2Digit page: a pointer-events drawing pad that asks POST /predict what it reads.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const pad = $("pad");
  const ctx = pad.getContext("2d");
  const brush = $("brush");
  const brushValue = $("brush-value");
  const undoBtn = $("undo");
  const clearBtn = $("clear");
  const hint = $("canvas-hint");
  const digitEl = $("digit");
  const promptEl = $("prompt");
  const confEl = $("confidence");
  const errorEl = $("error");
  const bars = [...document.querySelectorAll("#bars li")];
  const preview = $("preview");
  const pctx = preview.getContext("2d");
  const overlay = $("overlay");
  const octx = overlay.getContext("2d");
  const numberList = $("number-digits");
  const digitDetails = $("digit-details");
  const modeInputs = [...document.querySelectorAll("input[name=mode]")];
  let mode = "digit"; // or "number": several digits side by side
  const explain = $("explain");
  const correctBox = $("correct");
  const correctStatus = $("correct-status");
  let lastDigit = null; // what the model said about the drawing now on the pad
  const saliencyImg = $("saliency");

  const LIVE_INTERVAL_MS = 200; // while drawing, ask at most this often
  const strokes = []; // each: {width, points: [[x, y], ...]} in CSS pixels
  let current = null;
  let requestSeq = 0; // answers to older requests are dropped
  let shownSeq = 0;
  let inFlight = false;
  let queued = false;
  let lastLive = 0;

  // ---- canvas sized for the screen's pixel density, so strokes stay crisp
  function resize() {
    const rect = pad.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    pad.width = Math.round(rect.width * dpr);
    pad.height = Math.round(rect.height * dpr);
    overlay.width = pad.width;
    overlay.height = pad.height;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    redraw();
  }

  function drawStroke(s) {
    ctx.strokeStyle = "#000";
    ctx.fillStyle = "#000";
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = s.width;
    const p = s.points;
    if (p.length === 1) {
      ctx.beginPath();
      ctx.arc(p[0][0], p[0][1], s.width / 2, 0, 2 * Math.PI);
      ctx.fill();
      return;
    }
    ctx.beginPath();
    ctx.moveTo(p[0][0], p[0][1]);
    // quadratic curves through midpoints: a smooth, marker-like line
    for (let i = 1; i < p.length - 1; i++) {
      const mx = (p[i][0] + p[i + 1][0]) / 2;
      const my = (p[i][1] + p[i + 1][1]) / 2;
      ctx.quadraticCurveTo(p[i][0], p[i][1], mx, my);
    }
    ctx.lineTo(p[p.length - 1][0], p[p.length - 1][1]);
    ctx.stroke();
  }

  function redraw() {
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, pad.width, pad.height);
    ctx.restore();
    strokes.forEach(drawStroke);
    if (current) drawStroke(current);
    const empty = strokes.length === 0 && !current;
    hint.classList.toggle("hidden", !empty);
    undoBtn.disabled = strokes.length === 0;
    clearBtn.disabled = empty;
  }

  function point(e) {
    const rect = pad.getBoundingClientRect();
    return [e.clientX - rect.left, e.clientY - rect.top];
  }

  // ---- pointer events: mouse, finger and pen alike
  pad.addEventListener("pointerdown", (e) => {
    if (e.button !== 0 && e.pointerType === "mouse") return;
    e.preventDefault();
    pad.setPointerCapture(e.pointerId);
    const pressure = e.pointerType === "pen" && e.pressure > 0 ? 0.6 + 0.8 * e.pressure : 1;
    current = { width: Number(brush.value) * pressure, points: [point(e)] };
    redraw();
  });

  pad.addEventListener("pointermove", (e) => {
    if (!current) return;
    e.preventDefault();
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    for (const ev of events.length ? events : [e]) current.points.push(point(ev));
    redraw();
    const now = performance.now();
    if (now - lastLive > LIVE_INTERVAL_MS) {
      lastLive = now;
      requestPrediction();
    }
  });

  function endStroke(e) {
    if (!current) return;
    if (e && pad.hasPointerCapture(e.pointerId)) pad.releasePointerCapture(e.pointerId);
    strokes.push(current);
    current = null;
    redraw();
    requestPrediction();
  }
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);

  undoBtn.addEventListener("click", () => {
    strokes.pop();
    correctStatus.textContent = "";
    redraw();
    requestPrediction();
  });

  clearBtn.addEventListener("click", () => {
    strokes.length = 0;
    current = null;
    correctStatus.textContent = "";
    redraw();
    requestPrediction();
  });

  modeInputs.forEach((input) =>
    input.addEventListener("change", () => {
      mode = input.value;
      document.body.classList.toggle("number-mode", mode === "number");
      pad.setAttribute("aria-label", `Drawing area: draw ${mode === "number" ? "a number" : "one digit"}`);
      resize();
      requestPrediction();
    }),
  );

  explain.addEventListener("change", () => requestPrediction());

  // Corrections: the drawing and the digit it really is go to POST /feedback.
  correctBox.querySelectorAll("button").forEach((button) =>
    button.addEventListener("click", async () => {
      const label = Number(button.dataset.digit);
      correctStatus.textContent = "Saving…";
      try {
        const response = await fetch("/feedback", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ image: pad.toDataURL("image/png"), label, predicted: lastDigit }),
        });
        const body = await response.json().catch(() => ({}));
        if (!response.ok) throw new Error(body.error || `the server answered ${response.status}`);
        correctStatus.textContent = `Thank you: saved as a ${label}. It will learn from it at the next fine-tuning.`;
      } catch (err) {
        correctStatus.textContent = `Could not save the correction: ${err.message}`;
      }
    }),
  );

  brush.addEventListener("input", () => {
    brushValue.textContent = brush.value;
  });

  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z") {
      e.preventDefault();
      undoBtn.click();
    } else if (e.key === "Escape") {
      clearBtn.click();
    }
  });

  // ---- talking to the server
  function requestPrediction() {
    if (strokes.length === 0 && !current) {
      requestSeq++; // anything still on its way is now stale
      showBlank("Draw a digit to begin.");
      return;
    }
    if (inFlight) {
      queued = true; // send once more when the current answer arrives
      return;
    }
    sendPrediction();
  }

  async function sendPrediction() {
    const seq = ++requestSeq;
    inFlight = true;
    queued = false;
    try {
      const response = await fetch("/predict", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(
          mode === "number"
            ? { image: pad.toDataURL("image/png"), mode: "number" }
            : { image: pad.toDataURL("image/png"), return_input: true, explain: explain.checked },
        ),
      });
      let body = null;
      try {
        body = await response.json();
      } catch (_) {
        body = null;
      }
      if (!response.ok) {
        throw new Error((body && body.error) || `the server answered ${response.status}`);
      }
      if (seq >= shownSeq && seq === requestSeq) {
        shownSeq = seq;
        if ("number" in body) showNumber(body);
        else showResult(body);
      }
    } catch (err) {
      if (seq === requestSeq) showError(err);
    } finally {
      inFlight = false;
      if (queued) requestPrediction();
    }
  }

  function showBlank(message) {
    errorEl.hidden = true;
    correctBox.hidden = true;
    lastDigit = null;
    octx.clearRect(0, 0, overlay.width, overlay.height);
    numberList.hidden = true;
    numberList.replaceChildren();
    digitDetails.hidden = mode === "number";
    digitEl.textContent = "";
    confEl.textContent = "";
    promptEl.textContent = message;
    promptEl.hidden = false;
    setBars(new Array(10).fill(0), -1);
    pctx.clearRect(0, 0, 28, 28);
    preview.hidden = false;
    saliencyImg.hidden = true;
  }

  function showResult(r) {
    errorEl.hidden = true;
    octx.clearRect(0, 0, overlay.width, overlay.height);
    numberList.hidden = true;
    digitDetails.hidden = false;
    if (r.blank) {
      showBlank("That is too small to read. Draw a bigger digit.");
      return;
    }
    lastDigit = r.digit;
    correctBox.hidden = false;
    if (r.rejected) {
      // drawn, but not like a digit: say so instead of guessing; the bars still show the model's view
      digitEl.textContent = "?";
      promptEl.textContent = "That doesn't look like a digit.";
      promptEl.hidden = false;
      confEl.textContent = r.reason ? `(${r.reason})` : "";
      setBars(r.probabilities, -1);
    } else {
      promptEl.hidden = true;
      digitEl.textContent = String(r.digit);
      confEl.textContent = `${(100 * r.confidence).toFixed(1)} % confident`;
      setBars(r.probabilities, r.digit);
    }
    if (r.input) drawPreview(r.input);
    preview.hidden = Boolean(r.saliency_png);
    saliencyImg.hidden = !r.saliency_png;
    if (r.saliency_png) saliencyImg.src = r.saliency_png;
  }

  function showNumber(r) {
    errorEl.hidden = true;
    correctBox.hidden = true;
    if (r.blank) {
      showBlank("Nothing to read yet. Write a number, digits side by side.");
      return;
    }
    promptEl.hidden = true;
    digitEl.textContent = r.number;
    const least = Math.min(...r.digits.map((d) => d.confidence));
    confEl.textContent = `${r.digits.length} digit${r.digits.length > 1 ? "s" : ""}, least sure ${(100 * least).toFixed(0)} %`;
    digitDetails.hidden = true;
    numberList.replaceChildren(
      ...r.digits.map((d) => {
        const li = document.createElement("li");
        const b = document.createElement("b");
        b.textContent = String(d.digit);
        li.append(b, `${(100 * d.confidence).toFixed(0)} %`);
        return li;
      }),
    );
    numberList.hidden = false;
    // boxes around the digits found, in the canvas bitmap's pixels
    octx.clearRect(0, 0, overlay.width, overlay.height);
    const dpr = window.devicePixelRatio || 1;
    octx.lineWidth = 2 * dpr;
    octx.strokeStyle = "#1f5fbf";
    octx.fillStyle = "#1f5fbf";
    octx.font = `${12 * dpr}px system-ui, sans-serif`;
    const pad4 = 4 * dpr;
    r.digits.forEach((d) => {
      const [l, t, rt, b] = d.box;
      octx.strokeRect(l - pad4, t - pad4, rt - l + 2 * pad4, b - t + 2 * pad4);
      octx.fillText(String(d.digit), l - pad4, Math.max(12 * dpr, t - pad4 - 3 * dpr));
    });
  }

  function showError(err) {
    // the drawing stays: only the message changes
    errorEl.textContent = `Could not read the drawing: ${err.message}. Your drawing is kept; try again.`;
    errorEl.hidden = false;
  }

  function setBars(probs, top) {
    bars.forEach((li, d) => {
      const pct = 100 * (probs[d] || 0);
      li.querySelector(".bar-fill").style.width = `${pct.toFixed(1)}%`;
      li.querySelector(".bar-value").textContent = `${pct < 10 ? pct.toFixed(1) : pct.toFixed(0)}%`;
      li.classList.toggle("top", d === top);
      li.setAttribute("aria-label", `${d}: ${pct.toFixed(1)} percent`);
    });
  }

  function drawPreview(rows) {
    const img = pctx.createImageData(28, 28);
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const v = Math.round(255 * rows[y][x]);
        const i = 4 * (28 * y + x);
        img.data[i] = img.data[i + 1] = img.data[i + 2] = v;
        img.data[i + 3] = 255;
      }
    }
    pctx.putImageData(img, 0, 0);
  }

  async function loadModelInfo() {
    const el = $("model-info");
    try {
      const card = await (await fetch("/api/model")).json();
      const acc = card.test_accuracy ? `${(100 * card.test_accuracy).toFixed(2)} % on the MNIST test set` : "";
      el.textContent = [card.name, card.version && `v${card.version}`, acc].filter(Boolean).join(", ");
    } catch (_) {
      el.textContent = "unavailable";
    }
  }

  // A new bitmap size clears the boxes and moves the digits' pixel coordinates: ask again.
  window.addEventListener("resize", () => {
    resize();
    if (mode === "number") requestPrediction();
  });
  resize();
  showBlank("Draw a digit to begin.");
  loadModelInfo();
})();

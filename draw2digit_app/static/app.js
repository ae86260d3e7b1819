// Draw2Digit page: a pointer-events drawing pad that asks POST /predict what it reads.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const pad = $("pad");
  const ctx = pad.getContext("2d");
  const brush = $("brush");
  const brushValue = $("brush-value");
  const undoBtn = $("undo");
  const redoBtn = $("redo");
  const clearBtn = $("clear");
  const hint = $("canvas-hint");
  const digitEl = $("digit");
  const promptEl = $("prompt");
  const confEl = $("confidence");
  const errorEl = $("error");
  const errorText = $("error-text");
  const retryBtn = $("retry");
  const miniAnswer = $("mini-answer");
  const bars = [...document.querySelectorAll("#bars li")];
  const preview = $("preview");
  const pctx = preview.getContext("2d");
  const overlay = $("overlay");
  const octx = overlay.getContext("2d");
  const numberList = $("number-digits");
  const digitDetails = $("digit-details");
  const modeInputs = [...document.querySelectorAll("input[name=mode]")];
  const explain = $("explain");
  const whyCard = $("why-card");
  const whyStatus = $("why-status");
  const whyInput = $("why-input");
  const whyDigit = $("why-digit");
  const whyCaption = $("why-caption");
  const saliencyImg = $("saliency");
  const saliencyCaption = $("saliency-caption");
  const correctBox = $("correct");
  const notRight = $("not-right");
  const correctPanel = $("correct-panel");
  const correctLabel = $("correct-label");
  const correctButtons = [...correctBox.querySelectorAll(".correct-buttons button")];
  const correctStatus = $("correct-status");
  const numberHint = $("number-hint");

  const LIVE_INTERVAL_MS = 200; // while drawing, ask at most this often
  const TAGLINES = {
    digit: "Draw a digit from 0 to 9. A convolutional network trained on MNIST reads it as you draw.",
    number: "Write a number, digits side by side. The network reads each digit as you write.",
  };
  const announceEl = $("announce");
  const suggestEl = $("number-suggest");
  let announced = -1; // the drawing version whose settled answer was announced
  const SETTLE_MS = 700; // after the pen lifts, this long without a new stroke makes the drawing finished
  const taughtEl = $("taught");
  const forgetBtn = $("forget");
  const forgetStatus = $("forget-status");

  // ---- who draws: an opaque random id kept in this browser, so answers learn from this person's
  // corrections (POST /predict and /feedback send it; "Forget my handwriting" deletes what it taught)
  function randomId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  function userId() {
    try {
      let id = localStorage.getItem("draw2digit-user");
      if (!id) {
        id = randomId();
        localStorage.setItem("draw2digit-user", id);
      }
      return id;
    } catch (_) {
      // storage blocked: one id for this page view
      userId.fallback = userId.fallback || randomId();
      return userId.fallback;
    }
  }
  const UNSURE = 0.8; // below this confidence the correction digits open by themselves
  let mode = "digit"; // or "number": several digits side by side

  // ---- the drawing: strokes {width, points: [[x, y], ...]} in CSS pixels of the pad, with undo and redo.
  // Every change is one step (Clear too: Ctrl+Z brings a cleared drawing back), as in draw2digit.history.
  const history = { present: [], past: [], future: [] };
  let current = null; // the stroke under the pen
  let version = 0; // bumps on every change: a correction belongs to one version of the drawing
  let padSize = null; // [width, height] the strokes are measured in

  function commit(strokes) {
    history.past.push(history.present);
    if (history.past.length > 200) history.past.shift();
    history.present = strokes;
    history.future.length = 0;
    changed();
  }

  function undo() {
    if (!history.past.length) return;
    history.future.push(history.present);
    history.present = history.past.pop();
    changed();
  }

  function redo() {
    if (!history.future.length) return;
    history.past.push(history.present);
    history.present = history.future.pop();
    changed();
  }

  function changed() {
    version++;
    resetCorrection();
    redraw();
    requestPrediction();
    scheduleSettle();
  }

  // The old pad scaled uniformly into the new one and centred, pen widths too (draw2digit.canvas.fit_strokes).
  function fitStrokes(strokes, [ow, oh], [nw, nh]) {
    const s = Math.min(nw / ow, nh / oh);
    const dx = (nw - ow * s) / 2;
    const dy = (nh - oh * s) / 2;
    return strokes.map((st) => ({ width: st.width * s, points: st.points.map(([x, y]) => [x * s + dx, y * s + dy]) }));
  }

  // One rule for every percentage on screen (draw2digit.canvas.percent): one decimal,
  // never "100.0" for less than certain nor "0.0" for more than nothing.
  // one rule for every percentage on screen, as draw2digit.canvas.percent
  function percent(p) {
    const v = 100 * p;
    if (v >= 99.95 && v < 100) return ">99.9 %";
    if (v > 0 && v < 0.05) return "<0.1 %";
    return `${v.toFixed(1)} %`;
  }

  // ---- canvas sized for the screen's pixel density, so strokes stay crisp; strokes follow a new size
  function resize() {
    const rect = pad.getBoundingClientRect();
    const size = [rect.width, rect.height];
    const same = padSize && size[0] === padSize[0] && size[1] === padSize[1];
    if (padSize && rect.width > 0 && (size[0] !== padSize[0] || size[1] !== padSize[1])) {
      const fit = (strokes) => fitStrokes(strokes, padSize, size);
      history.present = fit(history.present);
      history.past = history.past.map(fit);
      history.future = history.future.map(fit);
    }
    if (rect.width > 0) padSize = size;
    const dpr = window.devicePixelRatio || 1;
    pad.width = Math.round(rect.width * dpr);
    pad.height = Math.round(rect.height * dpr);
    overlay.width = pad.width;
    overlay.height = pad.height;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    redraw();
    // sizing a canvas wipes it, even to its own size: a pad that kept its size keeps its boxes
    if (same && shown && shown.kind === "number" && shown.version === version) {
      drawBoxes(shown.body.digits, selectedPiece);
    }
  }

  function drawStroke(s, g = ctx) {
    g.strokeStyle = "#000";
    g.fillStyle = "#000";
    g.lineCap = "round";
    g.lineJoin = "round";
    g.lineWidth = s.width;
    const p = s.points;
    if (p.length === 1) {
      g.beginPath();
      g.arc(p[0][0], p[0][1], s.width / 2, 0, 2 * Math.PI);
      g.fill();
      return;
    }
    g.beginPath();
    g.moveTo(p[0][0], p[0][1]);
    // quadratic curves through midpoints: a smooth, marker-like line
    for (let i = 1; i < p.length - 1; i++) {
      const mx = (p[i][0] + p[i + 1][0]) / 2;
      const my = (p[i][1] + p[i + 1][1]) / 2;
      g.quadraticCurveTo(p[i][0], p[i][1], mx, my);
    }
    g.lineTo(p[p.length - 1][0], p[p.length - 1][1]);
    g.stroke();
  }

  function redraw() {
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, pad.width, pad.height);
    ctx.restore();
    history.present.forEach((st) => drawStroke(st));
    if (current) drawStroke(current);
    const empty = history.present.length === 0 && !current;
    hint.classList.toggle("hidden", !empty);
    const focused = document.activeElement;
    undoBtn.disabled = history.past.length === 0;
    redoBtn.disabled = history.future.length === 0;
    clearBtn.disabled = empty;
    // a button that just disabled itself would drop the keyboard focus to <body>: keep it nearby
    if (focused && focused.disabled) {
      const next = [redoBtn, undoBtn].find((b) => b !== focused && !b.disabled);
      (focused === clearBtn || !next ? pad : next).focus();
    }
  }

  // What the server reads: the strokes drawn again at one pixel per CSS pixel, not the screen's bitmap, so a
  // phone at 3x sends the picture a desktop sends (a ninth of the pixels to upload and decode) and the boxes
  // of number mode come back in the pad's CSS pixels.
  const sent = document.createElement("canvas");
  function drawingPNG() {
    const [w, h] = padSize || [pad.width, pad.height];
    sent.width = Math.max(1, Math.round(w));
    sent.height = Math.max(1, Math.round(h));
    const sctx = sent.getContext("2d");
    history.present.forEach((st) => drawStroke(st, sctx));
    if (current) drawStroke(current, sctx);
    return sent.toDataURL("image/png");
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
    resetCorrection();
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

  let settleTimer = null;
  function endStroke(e) {
    if (!current) return;
    if (e && pad.hasPointerCapture(e.pointerId)) pad.releasePointerCapture(e.pointerId);
    const stroke = current;
    current = null;
    commit([...history.present, stroke]);
  }

  // The drawing is finished when the pen has been up a moment: that answer, if not corrected,
  // is remembered as what this person meant.
  function scheduleSettle() {
    clearTimeout(settleTimer);
    const forVersion = version;
    settleTimer = setTimeout(() => {
      if (forVersion === version && !current && !isEmpty()) {
        finalFor = version;
        requestPrediction();
      }
    }, SETTLE_MS);
  }
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);

  undoBtn.addEventListener("click", undo);
  redoBtn.addEventListener("click", redo);
  clearBtn.addEventListener("click", () => {
    current = null;
    if (history.present.length) commit([]);
  });

  // Switching mode reshapes the pad: the strokes are fitted onto the new pad (resize), so what is
  // read is what the user sees, and undo/redo stay on the pad.
  modeInputs.forEach((input) =>
    input.addEventListener("change", () => {
      mode = input.value;
      document.body.classList.toggle("number-mode", mode === "number");
      $("tagline").textContent = TAGLINES[mode];
      pad.setAttribute("aria-label", `Drawing area: draw ${mode === "number" ? "a number" : "one digit"}`);
      resize();
      version++;
      resetCorrection();
      requestPrediction();
    }),
  );

  explain.addEventListener("change", () => {
    // progress at once, even when the answer to an earlier request is still on its way
    const asked = explain.checked && mode === "digit" && !isEmpty();
    whyStatus.hidden = !asked;
    if (asked) {
      whyCard.hidden = false;
      whyCard.scrollIntoView({ block: "nearest", behavior: "smooth" }); // below the fold on most screens
    }
    requestPrediction();
  });

  brush.addEventListener("input", () => {
    brushValue.textContent = brush.value;
  });

  // Ctrl+Z undo, Ctrl+Shift+Z or Ctrl+Y redo, Esc clear (not while a control has focus: Esc there
  // belongs to the control). The notebook pad has the same keys.
  document.addEventListener("keydown", (e) => {
    const key = e.key.toLowerCase();
    const mod = e.ctrlKey || e.metaKey;
    if (mod && (key === "y" || (key === "z" && e.shiftKey))) {
      e.preventDefault();
      redo();
    } else if (mod && key === "z") {
      e.preventDefault();
      undo();
    } else if (e.key === "Escape") {
      const t = document.activeElement;
      if (t && t !== document.body && t !== pad && t.matches("input, button, select, textarea, [tabindex]")) return;
      clearBtn.click();
    }
  });

  // ---- talking to the server
  let requestSeq = 0; // answers to older requests are dropped
  let shownSeq = 0;
  let inFlight = false;
  let queued = false;
  let lastLive = 0;
  let shown = null; // the answer on screen: {kind: "digit"|"number", body, version}
  let finalFor = -1; // the drawing version whose next request says it is finished

  function isEmpty() {
    return history.present.length === 0 && !current;
  }

  function requestPrediction() {
    if (isEmpty()) {
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
    const wantWhy = mode === "digit" && explain.checked;
    const final = finalFor === version && !current;
    inFlight = true;
    queued = false;
    whyStatus.hidden = !wantWhy;
    if (wantWhy) whyCard.hidden = false;
    try {
      let response;
      try {
        response = await fetch("/predict", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(
            mode === "number"
              ? { image: drawingPNG(), mode: "number", user: userId() }
              : { image: drawingPNG(), return_input: true, explain: wantWhy, user: userId(), final },
          ),
        });
      } catch (_) {
        const lost = new Error("the server could not be reached");
        lost.lost = true;
        throw lost;
      }
      let body = null;
      try {
        body = await response.json();
      } catch (_) {
        body = null;
      }
      if (!response.ok) {
        const failed = new Error((body && body.error) || `the server answered ${response.status}`);
        failed.lost = response.status >= 502 && !(body && body.error); // a proxy's answer while ours is away
        throw failed;
      }
      serverBack();
      if (seq >= shownSeq && seq === requestSeq) {
        shownSeq = seq;
        const verdict = final && finalFor === version && !current; // settled: the pen is up, the drawing kept
        if ("number" in body) showNumber(body, verdict);
        else showResult(body, verdict);
      }
    } catch (err) {
      if (seq === requestSeq) showError(err);
    } finally {
      inFlight = false;
      if (seq === requestSeq || !explain.checked) whyStatus.hidden = true;
      if (queued) requestPrediction();
    }
  }

  retryBtn.addEventListener("click", () => {
    stopRetrying();
    errorEl.hidden = true;
    retryDelay = 1000; // asked by hand: start the back-off again
    requestPrediction();
  });

  // ---- a lost server: the old answer is greyed (it may not be this drawing's), the drawing is kept,
  // and the page asks again by itself, waiting 1, 2, 4... up to 15 s, until the server is back. The wait
  // counts down in the error and in the one-line answer under the pad, which a phone keeps in view.
  let retryDelay = 1000;
  let retryTimer = null;
  let countdown = null;
  const resultCard = document.querySelector(".card.result");
  function stopRetrying() {
    clearTimeout(retryTimer);
    clearInterval(countdown);
    retryTimer = null;
    miniAnswer.classList.remove("mini-error");
  }
  function serverLost() {
    // requests already on their way when the server went (a stroke sends several) fail one after
    // another: they join the wait that is counting down instead of each doubling it
    if (retryTimer !== null) return;
    stopRetrying();
    resultCard.classList.add("stale");
    whyCard.hidden = true; // never pictures of an answer that did not come
    const wait = retryDelay;
    retryDelay = Math.min(2 * retryDelay, 15000);
    let left = Math.round(wait / 1000);
    const say = () => {
      errorText.textContent = `The server can't be reached. Your drawing is kept; trying again in ${left} s.`;
      miniAnswer.textContent = `Server can't be reached · trying again in ${left} s`;
    };
    say();
    miniAnswer.classList.add("mini-error");
    countdown = setInterval(() => {
      if (left > 1) left -= 1;
      say();
    }, 1000);
    retryTimer = setTimeout(() => {
      retryTimer = null;
      clearInterval(countdown);
      if (isEmpty()) return;
      errorText.textContent = "The server can't be reached. Your drawing is kept; trying again now…";
      miniAnswer.textContent = "Server can't be reached · trying again now…";
      requestPrediction();
    }, wait);
  }
  function serverBack() {
    stopRetrying();
    retryDelay = 1000;
    resultCard.classList.remove("stale");
    errorEl.hidden = true;
  }

  function showBlank(message) {
    stopRetrying();
    errorEl.hidden = true;
    correctBox.hidden = true;
    shown = null;
    octx.clearRect(0, 0, overlay.width, overlay.height);
    numberList.hidden = true;
    numberList.replaceChildren();
    digitDetails.hidden = mode === "number";
    digitEl.textContent = "";
    confEl.textContent = "";
    taughtEl.hidden = true;
    suggestEl.hidden = true;
    promptEl.textContent = mode === "number" && message.startsWith("Draw") ? "Write a number: digits side by side." : message;
    promptEl.hidden = false;
    miniAnswer.textContent = "";
    setBars(new Array(10).fill(0), -1);
    pctx.clearRect(0, 0, 28, 28);
    whyCard.hidden = true;
  }

  function runnerUp(probs, top) {
    let best = -1;
    probs.forEach((p, d) => {
      if (d !== top && (best < 0 || p > probs[best])) best = d;
    });
    return best;
  }

  // Said once per drawing, when its answer settles: a screen reader hears the verdict, not every stroke.
  function announce(text) {
    if (announced === version) return;
    announced = version;
    announceEl.textContent = text;
  }

  function showResult(r, verdict = true) {
    errorEl.hidden = true;
    octx.clearRect(0, 0, overlay.width, overlay.height);
    numberList.hidden = true;
    digitDetails.hidden = false;
    if (r.blank) {
      showBlank("That is too small to read. Draw a bigger digit.");
      return;
    }
    shown = { kind: "digit", body: r, version };
    const top = r.rejected ? -1 : r.digit;
    const probs = r.probabilities;
    const best = probs.indexOf(Math.max(...probs));
    const next = runnerUp(probs, best);
    digitEl.classList.toggle("live", !verdict);
    if (r.rejected && verdict) {
      // drawn, but not like a digit: say so instead of guessing; the bars still show the model's view
      digitEl.textContent = "?";
      promptEl.textContent = "That doesn't look like a digit.";
      promptEl.hidden = false;
      confEl.textContent = r.reason ? `(${r.reason})` : "";
      miniAnswer.textContent = "? not a digit";
      announce(`Not a digit: ${r.reason || "it does not look like one"}.`);
    } else {
      // while the pen is still at work, the likeliest digit shows quietly: no verdict yet
      const shownDigit = r.rejected ? best : r.digit;
      const sure = r.rejected ? probs[best] : r.confidence;
      promptEl.hidden = true;
      digitEl.textContent = String(shownDigit);
      confEl.textContent = `${percent(sure)} confident`;
      miniAnswer.innerHTML = "";
      const b = document.createElement("b");
      b.textContent = String(shownDigit);
      miniAnswer.append(b, ` ${percent(sure)} · next ${next}: ${percent(probs[next])}`);
      if (verdict) announce(`Reads ${r.digit}, ${percent(r.confidence)} confident.${r.note ? " " + r.note : ""}`);
    }
    showTaught(r);
    suggestEl.hidden = !(verdict && r.looks_like_number);
    if (verdict && r.looks_like_number) {
      $("number-suggest-text").textContent = `This looks like several digits side by side (${r.looks_like_number}).`;
    }
    setBars(probs, r.rejected && !verdict ? best : top);
    if (r.input) drawImage(preview, r.input);
    if (verdict) showCorrection(r.rejected || r.confidence < UNSURE);
    else if (!userOpened) correctBox.hidden = true; // the panel comes with the verdict
    showWhy(r, best, next);
  }

  function showTaught(r) {
    taughtEl.hidden = !r.personalized;
    if (!r.personalized) return;
    // worded by the library, as in the notebook pad; in a number, one line per digit taught
    taughtEl.textContent = r.digits
      ? r.digits.map((d, i) => (d.personalized ? `Digit ${i + 1}: ${d.note}` : "")).filter(Boolean).join(" ")
      : r.note;
  }

  $("read-as-number").addEventListener("click", () => {
    $("mode-number").click();
    $("mode-number").focus();
  });

  forgetBtn.addEventListener("click", async () => {
    forgetBtn.disabled = true;
    forgetStatus.classList.remove("failed");
    forgetStatus.textContent = "Forgetting…";
    try {
      let response;
      try {
        response = await fetch(`/users/${userId()}`, { method: "DELETE" });
      } catch (_) {
        throw new Error("the server could not be reached (network error)");
      }
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(body.error || `the server answered ${response.status}`);
      forgetStatus.textContent = "Forgotten: answers come from the model alone again.";
      if (!isEmpty()) requestPrediction();
    } catch (err) {
      forgetStatus.classList.add("failed");
      forgetStatus.textContent = `Could not forget: ${err.message}. Try again.`;
    } finally {
      forgetBtn.disabled = false;
      forgetBtn.focus();
    }
  });

  function showWhy(r, best, next) {
    if (!r.saliency_png || !explain.checked) {
      whyCard.hidden = true;
      return;
    }
    whyCard.hidden = false;
    const said = r.rejected ? `${best} (but it doubts it is a digit)` : String(best);
    whyDigit.textContent = said;
    saliencyImg.src = r.saliency_png;
    saliencyCaption.textContent = `What ${best} rests on`;
    if (r.input) drawImage(whyInput, r.input);
    whyCaption.textContent =
      `Yellow pixels hold the answer ${best} up most, red ones less, grey ones not at all ` +
      `(each part painted over in turn). Next most likely: ${next}, ${percent(r.probabilities[next])}.`;
  }

  function showNumber(r, verdict = true) {
    errorEl.hidden = true;
    whyCard.hidden = true;
    if (r.blank) {
      showBlank("Nothing to read yet. Write a number, digits side by side.");
      return;
    }
    shown = { kind: "number", body: r, version };
    suggestEl.hidden = true;
    showTaught(r);
    digitEl.classList.toggle("live", !verdict);
    const odd = verdict ? r.digits.map((d, i) => (d.rejected ? i : -1)).filter((i) => i >= 0) : [];
    const read = r.digits.map((d, i) => (odd.includes(i) ? "?" : String(d.digit))).join("");
    const least = Math.min(...r.digits.map((d) => d.confidence));
    if (verdict && r.rejected) {
      // drawn, but not one piece looks like a digit
      digitEl.textContent = "?";
      promptEl.textContent = "That doesn't look like a number: no digit in it.";
      promptEl.hidden = false;
      confEl.textContent = "";
      miniAnswer.textContent = "? no digit";
      announce("Not a number: no digit in it.");
    } else {
      promptEl.hidden = true;
      digitEl.textContent = read;
      confEl.textContent = odd.length
        ? `Digit ${odd.map((i) => i + 1).join(" and ")} ${odd.length > 1 ? "don't" : "doesn't"} look like a digit.`
        : `${r.digits.length} digit${r.digits.length > 1 ? "s" : ""}, least sure ${percent(least)}`;
      miniAnswer.textContent = `${read} · least sure ${percent(least)}`;
    }
    digitDetails.hidden = true;
    numberList.replaceChildren(
      ...r.digits.map((d, i) => {
        const li = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.position = String(i);
        button.dataset.testid = `number-digit-${i}`;
        button.setAttribute("aria-pressed", "false");
        button.setAttribute("aria-label", `digit ${i + 1} of ${r.digits.length}: ${d.digit}, ${percent(d.confidence)}; choose to correct it`);
        const b = document.createElement("b");
        b.textContent = odd.includes(i) ? "?" : String(d.digit);
        if (odd.includes(i)) button.classList.add("odd");
        button.append(b, percent(d.confidence));
        button.addEventListener("click", () => choosePiece(i));
        li.append(button);
        return li;
      }),
    );
    numberList.hidden = false;
    drawBoxes(r.digits, -1);
    if (!verdict) {
      if (selectedPiece < 0) correctBox.hidden = true;
      return;
    }
    if (!r.rejected) announce(`Reads ${read}, ${r.digits.length} digits.`);
    correctBox.hidden = false;
    notRight.hidden = true;
    numberHint.hidden = false;
    // A digit chosen for correction stays chosen when a later answer to the same drawing arrives
    // (the answer to the last stroke's end can land after the click); any new stroke resets it.
    if (selectedPiece >= 0 && selectedPiece < r.digits.length) {
      choosePiece(selectedPiece, false, true);
    } else if (odd.length && !r.rejected) {
      choosePiece(odd[0], false); // the piece that is not a digit: what is it?
    } else {
      setPanel(false);
      selectedPiece = -1;
    }
  }

  // boxes around the digits found (in the pad's CSS pixels, as sent), drawn crisp at the screen's density;
  // the chosen one thicker
  function drawBoxes(digits, chosen) {
    octx.setTransform(1, 0, 0, 1, 0, 0);
    octx.clearRect(0, 0, overlay.width, overlay.height);
    const dpr = window.devicePixelRatio || 1;
    octx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const gap = 4; // between the ink and its box
    const labelSize = 13;
    octx.font = `600 ${labelSize}px system-ui, sans-serif`;
    const labels = [];
    digits.forEach((d, i) => {
      const [l, t, rt, b] = d.box;
      octx.strokeStyle = octx.fillStyle = i === chosen ? "#a4161a" : "#1f5fbf";
      octx.lineWidth = i === chosen ? 3 : 2;
      octx.strokeRect(l - gap, t - gap, rt - l + 2 * gap, b - t + 2 * gap);
      // the label above the box, or inside its top when there is no room above (never clipped)
      const above = t - gap - 3;
      const y = above - labelSize >= 0 ? above : t - gap + labelSize + 2;
      octx.fillText(String(d.digit), l - gap + 3, y);
      labels.push({ top: y - labelSize, bottom: y }); // in CSS pixels, for tests and tools
    });
    octx.setTransform(1, 0, 0, 1, 0, 0);
    overlay.dataset.labels = JSON.stringify(labels);
  }

  // ---- corrections: the drawing (or one digit of a number) and what it really is go to POST /feedback
  let selectedPiece = -1;
  let saving = false;
  const saved = new Set(); // what was stored for this version of the drawing: "digit" or a position
  let userOpened = false; // "Not right?" opened for this drawing: a later answer to it keeps the panel open

  function resetCorrection() {
    saved.clear();
    userOpened = false;
    correctStatus.textContent = "";
    correctStatus.classList.remove("failed");
    correctButtons.forEach((b) => {
      b.setAttribute("aria-pressed", "false");
      b.disabled = false;
    });
    selectedPiece = -1;
    numberList.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", "false"));
  }

  function showCorrection(open) {
    correctBox.hidden = false;
    numberHint.hidden = true;
    notRight.hidden = open; // open already: the button would only close it
    setPanel(open || userOpened);
    correctLabel.textContent = "It is a:";
  }

  function setPanel(open) {
    correctPanel.hidden = !open;
    notRight.setAttribute("aria-expanded", String(open));
  }

  notRight.addEventListener("click", () => {
    userOpened = correctPanel.hidden;
    setPanel(userOpened);
  });

  function choosePiece(i, focus = true, again = false) {
    if (!shown || shown.kind !== "number") return;
    selectedPiece = i;
    numberList.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(Number(b.dataset.position) === i)));
    drawBoxes(shown.body.digits, i);
    correctLabel.textContent = `Digit ${i + 1} of ${shown.body.digits.length} is a:`;
    correctButtons.forEach((b) => {
      b.setAttribute("aria-pressed", "false");
      b.disabled = saved.has(i);
    });
    // chosen again by a later answer to the same drawing: what was said about it stays
    if (!again) correctStatus.textContent = saved.has(i) ? `Digit ${i + 1} is already saved.` : "";
    setPanel(true);
    if (focus) correctButtons[0].focus();
  }

  correctButtons.forEach((button) =>
    button.addEventListener("click", async () => {
      if (saving || !shown) return; // a double click saves once
      const none = button.dataset.digit === "none"; // "it is not a digit"
      const label = none ? "not a digit" : Number(button.dataset.digit);
      const isNumber = shown.kind === "number";
      if (isNumber && selectedPiece < 0) return;
      const said = isNumber ? shown.body.digits[selectedPiece].digit : shown.body.rejected ? null : shown.body.digit;
      correctButtons.forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      correctStatus.classList.remove("failed");
      const saidNone = isNumber ? shown.body.digits[selectedPiece].rejected : shown.body.rejected;
      if ((none && saidNone) || (!none && label === said)) {
        correctStatus.textContent = `That is what it read: nothing to correct. Thank you for checking.`;
        return;
      }
      const payload = { image: drawingPNG(), label, predicted: said, user: userId() };
      if (isNumber) payload.position = selectedPiece;
      const forVersion = version;
      saving = true;
      correctButtons.forEach((b) => (b.disabled = true));
      correctStatus.textContent = "Saving…";
      try {
        let response;
        try {
          response = await fetch("/feedback", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify(payload),
          });
        } catch (_) {
          throw new Error("the server could not be reached (network error)");
        }
        const body = await response.json().catch(() => ({}));
        if (response.status === 429) {
          // rate-limited: say how long to wait, and keep the buttons for a later try
          const wait = Number(response.headers.get("Retry-After")) || 60;
          const limited = new Error(`Too many corrections, try again in ${wait} s.`);
          limited.limited = true;
          throw limited;
        }
        if (!response.ok) throw new Error(body.error || `the server answered ${response.status}`);
        if (forVersion !== version) return; // the drawing changed meanwhile: the message would mislead
        saved.add(isNumber ? selectedPiece : "digit");
        const as = none ? "not a digit" : `a ${label}`;
        const what = isNumber ? `digit ${selectedPiece + 1} saved as ${as}` : `saved as ${as}`;
        correctStatus.textContent = none
          ? `Thank you: ${what}. It helps the network tell digits from other drawings.`
          : body.learned
            ? `Learned: your ${label} (${what}): drawings like this are read as ${label} now.`
            : `Thank you: ${what}. It will learn from it at the next fine-tuning.`;
        if (body.learned) requestPrediction(); // the answer on screen follows at once
      } catch (err) {
        correctButtons.forEach((b) => (b.disabled = false));
        correctStatus.classList.add("failed");
        correctStatus.textContent = err.limited
          ? err.message
          : `Could not save the correction: ${err.message}. Try again.`;
      } finally {
        saving = false;
      }
    }),
  );

  function showError(err) {
    // the drawing stays: only the message changes, and the next stroke or "Try again" asks again
    promptEl.hidden = true;
    whyStatus.hidden = true;
    whyCard.hidden = true;
    if (err.lost) {
      serverLost();
    } else {
      errorText.textContent = `Could not read the drawing: ${err.message}. Your drawing is kept.`;
      miniAnswer.textContent = "Could not read the drawing (see below)";
      miniAnswer.classList.add("mini-error");
    }
    errorEl.hidden = false;
  }

  function setBars(probs, top) {
    bars.forEach((li, d) => {
      const p = probs[d] || 0;
      li.querySelector(".bar-fill").style.width = `${(100 * p).toFixed(1)}%`;
      li.querySelector(".bar-value").textContent = percent(p);
      li.classList.toggle("top", d === top);
      li.setAttribute("aria-label", `${d}: ${percent(p)}`);
    });
  }

  function drawImage(canvas, rows) {
    const c = canvas.getContext("2d");
    const img = c.createImageData(28, 28);
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const v = Math.round(255 * rows[y][x]);
        const i = 4 * (28 * y + x);
        img.data[i] = img.data[i + 1] = img.data[i + 2] = v;
        img.data[i + 3] = 255;
      }
    }
    c.putImageData(img, 0, 0);
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

  // A new pad size moves the strokes and the digits' pixel coordinates: fit them and ask again.
  window.addEventListener("resize", () => {
    const before = padSize;
    resize();
    if (before && padSize && (before[0] !== padSize[0] || before[1] !== padSize[1]) && !isEmpty()) requestPrediction();
  });
  resize();
  showBlank("Draw a digit to begin.");
  loadModelInfo();
})();

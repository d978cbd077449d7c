// The drawing page: a canvas you draw on with a mouse, pen or finger (pointer events), sent to
// POST /predict as a PNG while you draw (debounced), and the answer drawn as bars, the 28x28
// image the network saw, and the hidden layers' outputs. No library, nothing from the network
// but this server.
"use strict";

const PREDICT_DELAY_MS = 120; // wait this long after the last stroke movement before asking
const STROKE_WIDTH = 20; // in canvas pixels (280 wide): about 2 px once scaled to MNIST's 20x20 box

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const statusLine = document.getElementById("status");
const barsBox = document.getElementById("bars");
const seen = document.getElementById("seen");
const activationsBox = document.getElementById("activations");
const saliencyCanvas = document.getElementById("saliency");
const whyCaption = document.getElementById("why-caption");
const whyTop = document.getElementById("why-top");
const whyVersus = document.getElementById("why-versus");
let saliencyData = null; // the last answer's maps
let saliencyView = "top"; // "top" or "versus"

let drawing = false;
let last = null;
let hasInk = false;
let timer = null;
let inFlight = false;
let pending = null; // the newest request waiting for the one in flight
let sequence = 0;
let shown = 0; // sequence number of the answer on screen: older answers are dropped

function setStatus(text, isError = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle("error", isError);
}

// ------------------------------------------------------------------ drawing

function resetPad() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
  hasInk = false;
}

function point(event) {
  const box = pad.getBoundingClientRect();
  return {
    x: ((event.clientX - box.left) * pad.width) / box.width,
    y: ((event.clientY - box.top) * pad.height) / box.height,
  };
}

function stroke(from, to) {
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = STROKE_WIDTH;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(from.x, from.y);
  ctx.lineTo(to.x, to.y);
  ctx.stroke();
  hasInk = true;
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  try {
    pad.setPointerCapture(event.pointerId); // keep the stroke when the pointer leaves the canvas
  } catch {
    // Synthetic events (and some old browsers) have no capturable pointer: draw anyway.
  }
  drawing = true;
  last = point(event);
  stroke(last, last); // a tap leaves a dot
});

pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  // Coalesced events keep fast strokes smooth: the browser batches moves between frames.
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const e of events.length ? events : [event]) {
    const p = point(e);
    stroke(last, p);
    last = p;
  }
  schedulePredict();
});

function endStroke() {
  if (!drawing) return;
  drawing = false;
  clearTimeout(timer);
  timer = null;
  predictCanvas();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

document.getElementById("clear").addEventListener("click", () => {
  resetPad();
  sequence += 1;
  shown = sequence;
  pending = null;
  clearTimeout(timer);
  timer = null;
  updateBusy();
  showEmpty();
  setStatus("Draw a digit from 0 to 9, large and centred.");
});

document.getElementById("upload").addEventListener("change", (event) => {
  const file = event.target.files[0];
  event.target.value = ""; // choosing the same file again fires another change
  if (!file) return;
  previewUpload(file);
  send(file, file.name);
});

function previewUpload(file) {
  const url = URL.createObjectURL(file);
  const img = new Image();
  img.onload = () => {
    resetPad();
    const scale = Math.min(pad.width / img.width, pad.height / img.height);
    const w = img.width * scale;
    const h = img.height * scale;
    ctx.drawImage(img, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
    URL.revokeObjectURL(url);
  };
  img.onerror = () => URL.revokeObjectURL(url);
  img.src = url;
}

// ------------------------------------------------------------------ asking the server

// document.body.dataset.busy is "1" from a change of the drawing until the answer to its
// newest version is on screen, then "0" (tests wait on it; nothing else reads it).
function updateBusy() {
  document.body.dataset.busy = timer !== null || inFlight || pending !== null ? "1" : "0";
}

function schedulePredict() {
  clearTimeout(timer);
  timer = setTimeout(() => {
    timer = null;
    predictCanvas();
  }, PREDICT_DELAY_MS);
  updateBusy();
}

function predictCanvas() {
  if (!hasInk) {
    updateBusy();
    return;
  }
  pad.toBlob((blob) => send(blob, "drawing.png"), "image/png");
}

function send(blob, name) {
  sequence += 1;
  const request = { blob, name, id: sequence };
  if (inFlight) {
    pending = request; // only the newest drawing matters
    return;
  }
  post(request);
}

async function post(request) {
  inFlight = true;
  updateBusy();
  const form = new FormData();
  form.append("file", request.blob, request.name);
  try {
    const response = await fetch("/predict", { method: "POST", body: form });
    const data = await response.json();
    if (request.id > shown) {
      shown = request.id;
      if (response.ok) {
        showPrediction(data);
        setStatus("Keep drawing, or clear and try another digit.");
      } else {
        // The previous answer and 28x28 image belong to another picture: do not leave them up.
        showEmpty();
        setStatus(typeof data.detail === "string" ? data.detail : "The server refused the image.", true);
      }
    }
  } catch (error) {
    if (request.id > shown) {
      shown = request.id;
      showEmpty();
    }
    setStatus(`Cannot reach the server: ${error}`, true);
  } finally {
    inFlight = false;
    if (pending) {
      const next = pending;
      pending = null;
      post(next);
    } else {
      updateBusy();
    }
  }
}

// ------------------------------------------------------------------ showing the answer

function buildBars() {
  barsBox.replaceChildren();
  for (let k = 0; k < 10; k += 1) {
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.dataset.class = String(k);
    bar.innerHTML = '<div class="value"></div><div class="fill"></div><div class="label"></div>';
    bar.querySelector(".label").textContent = String(k);
    barsBox.appendChild(bar);
  }
}

function showEmpty() {
  document.getElementById("top-class").textContent = "?";
  document.getElementById("top-prob").textContent = "draw something";
  document.querySelector(".answer").classList.remove("rejected");
  for (const bar of barsBox.children) {
    bar.classList.remove("top");
    bar.querySelector(".fill").style.height = "0%";
    bar.querySelector(".value").textContent = "";
    bar.title = "";
  }
  seen.getContext("2d").clearRect(0, 0, 28, 28);
  activationsBox.replaceChildren();
  saliencyData = null;
  drawSaliency();
}

function showPrediction(data) {
  const probs = data.probabilities;
  if (barsBox.children.length !== probs.length) {
    barsBox.style.gridTemplateColumns = `repeat(${probs.length}, 1fr)`;
  }
  const answer = document.querySelector(".answer");
  const sure = `${(100 * probs[data.top_class]).toFixed(1)}%`;
  answer.classList.toggle("rejected", Boolean(data.rejected));
  if (data.rejected) {
    // "not sure": say so, and still show what the network would have answered.
    document.getElementById("top-class").textContent = "not sure";
    document.getElementById("top-prob").textContent =
      `this does not look like a digit it knows (best guess ${data.top_class}, ${sure})`;
    document.getElementById("top-prob").title = data.reason || "";
  } else {
    document.getElementById("top-class").textContent = String(data.top_class);
    document.getElementById("top-prob").textContent = `${sure} sure`;
    document.getElementById("top-prob").title = "";
  }
  probs.forEach((p, k) => {
    const bar = barsBox.children[k];
    if (!bar) return;
    bar.classList.toggle("top", k === data.top_class);
    bar.querySelector(".fill").style.height = `${(100 * p).toFixed(1)}%`;
    bar.querySelector(".value").textContent = p >= 0.01 ? `${Math.round(100 * p)}%` : "";
    bar.title = `${k}: ${(100 * p).toFixed(2)}%`;
  });
  drawSeen(data.image);
  saliencyData = data.saliency || null;
  drawSaliency();
  drawActivations(data.activations.slice(0, -1)); // the last layer is the bar chart
}

function drawSeen(image) {
  const c = seen.getContext("2d");
  const pixels = c.createImageData(28, 28);
  image.forEach((row, i) =>
    row.forEach((v, j) => {
      const o = 4 * (28 * i + j);
      const g = Math.round(255 * v);
      pixels.data[o] = g;
      pixels.data[o + 1] = g;
      pixels.data[o + 2] = g;
      pixels.data[o + 3] = 255;
    }),
  );
  c.putImageData(pixels, 0, 0);
}

// Red where a pixel pushed toward the class (or toward the top answer over the runner-up),
// blue where it pushed against; white is neutral. One scale per map: its largest |value|.
function drawSaliency() {
  const c = saliencyCanvas.getContext("2d");
  whyTop.setAttribute("aria-pressed", String(saliencyView === "top"));
  whyVersus.setAttribute("aria-pressed", String(saliencyView === "versus"));
  if (!saliencyData) {
    c.clearRect(0, 0, 28, 28);
    whyTop.textContent = "top answer";
    whyVersus.textContent = "vs runner-up";
    whyCaption.textContent = "Red: ink that pushed toward the answer; blue: against.";
    return;
  }
  const { top_class: top, runner_up: second } = saliencyData;
  whyTop.textContent = `top answer: ${top}`;
  whyVersus.textContent = `${top} vs runner-up ${second}`;
  const map = saliencyView === "top" ? saliencyData.top : saliencyData.versus;
  let scale = 0;
  for (const row of map) for (const v of row) scale = Math.max(scale, Math.abs(v));
  const pixels = c.createImageData(28, 28);
  map.forEach((row, i) =>
    row.forEach((v, j) => {
      const o = 4 * (28 * i + j);
      const t = scale > 0 ? Math.min(1, Math.abs(v) / scale) : 0;
      const fade = Math.round(255 * (1 - t));
      pixels.data[o] = v > 0 ? 255 : fade;
      pixels.data[o + 1] = fade;
      pixels.data[o + 2] = v < 0 ? 255 : fade;
      pixels.data[o + 3] = 255;
    }),
  );
  c.putImageData(pixels, 0, 0);
  whyCaption.textContent =
    saliencyView === "top"
      ? `Red: ink that pushed toward ${top}; blue: ink that pushed against it.`
      : `Red: ink that made it ${top} rather than ${second}; blue: ink that pointed to ${second}.`;
}

function drawActivations(layers) {
  if (activationsBox.children.length !== layers.length) {
    activationsBox.replaceChildren(
      ...layers.map(() => {
        const box = document.createElement("div");
        box.className = "layer";
        box.innerHTML = '<div class="name"></div><canvas></canvas>';
        return box;
      }),
    );
  }
  layers.forEach((layer, index) => {
    const box = activationsBox.children[index];
    const values = layer.values;
    const columns = Math.ceil(Math.sqrt(values.length * 2)); // wider than tall
    const rows = Math.ceil(values.length / columns);
    const cell = Math.max(4, Math.min(12, Math.floor(360 / columns)));
    const canvas = box.querySelector("canvas");
    canvas.width = columns * cell;
    canvas.height = rows * cell;
    const peak = Math.max(1e-6, ...values.map(Math.abs));
    const active = values.filter((v) => v > 0).length;
    box.querySelector(".name").textContent =
      `${layer.name} · ${layer.units} units · ${layer.activation} · ${active} active`;
    const c = canvas.getContext("2d");
    c.fillStyle = "#000";
    c.fillRect(0, 0, canvas.width, canvas.height);
    values.forEach((v, k) => {
      const t = Math.abs(v) / peak;
      // Positive outputs in warm yellow, negative ones (tanh, elu...) in blue.
      c.fillStyle = v >= 0
        ? `rgb(${Math.round(255 * t)}, ${Math.round(200 * t)}, ${Math.round(60 * t)})`
        : `rgb(${Math.round(60 * t)}, ${Math.round(130 * t)}, ${Math.round(255 * t)})`;
      c.fillRect((k % columns) * cell, Math.floor(k / columns) * cell, cell - 1, cell - 1);
    });
  });
}

// ------------------------------------------------------------------ the model

async function loadModel() {
  try {
    const response = await fetch("/model");
    const info = await response.json();
    const dense = info.layers.filter((l) => l.type === "Dense");
    const shape = [info.input_shape.reduce((a, b) => a * b, 1), ...dense.map((l) => l.units)];
    let text = `${shape.join("–")} MLP · ${info.params.toLocaleString()} parameters`;
    const accuracy = info.metrics && (info.metrics.test_accuracy ?? info.metrics.accuracy);
    if (typeof accuracy === "number") text += ` · ${(100 * accuracy).toFixed(2)}% test accuracy`;
    document.getElementById("model-summary").textContent = text;
    document.getElementById("report-link").hidden = !info.report_url;
  } catch (error) {
    document.getElementById("model-summary").textContent = `Cannot load the model: ${error}`;
  }
}

for (const [button, view] of [
  [whyTop, "top"],
  [whyVersus, "versus"],
]) {
  button.addEventListener("click", () => {
    saliencyView = view;
    drawSaliency();
  });
}

buildBars();
resetPad();
showEmpty();
loadModel();

// The MLP playground page: controls -> JSON commands; server-sent frames -> canvases.
// Training happens on the server, in multilayer; this script only draws.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const NEG = [245, 147, 34];
  const POS = [8, 119, 189];
  const FEATURE_LABELS = { "x1^2": "x1²", "x2^2": "x2²", "x1*x2": "x1·x2", "sin(x1)": "sin x1", "sin(x2)": "sin x2" };
  const MAX_HISTORY = 1500;

  let options = null;
  let sessionId = null;
  let source = null;
  let config = null;
  let data = null;
  let frame = null;
  let history = [];
  let playing = false;
  let maxTrainAccuracy = 0;
  let maxTestAccuracy = 0;

  // Colours: byte 0 is the most negative value, 128 zero (white), 255 the most positive.
  const LUT = new Uint8ClampedArray(256 * 3);
  for (let code = 0; code < 256; code++) {
    const t = (code / 255) * 2 - 1;
    const end = t < 0 ? NEG : POS;
    const a = Math.min(1, Math.abs(t));
    for (let c = 0; c < 3; c++) LUT[code * 3 + c] = Math.round(255 + (end[c] - 255) * a);
  }
  const colourOf = (code) => `rgb(${LUT[code * 3]},${LUT[code * 3 + 1]},${LUT[code * 3 + 2]})`;

  function showMessage(text) {
    const box = $("message");
    box.textContent = text;
    box.hidden = !text;
    document.body.dataset.error = text || "";
  }

  async function api(path, body, method) {
    const init = { method: method || (body === undefined ? "GET" : "POST") };
    if (body !== undefined) {
      init.headers = { "Content-Type": "application/json" };
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let payload = text;
    try { payload = JSON.parse(text); } catch (error) { /* plain text */ }
    if (!response.ok) {
      const detail = payload && payload.detail !== undefined ? payload.detail : text;
      throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
    }
    return payload;
  }

  async function send(message) {
    if (!sessionId) return null;
    try {
      const answer = await api(`/api/sessions/${sessionId}/commands`, message);
      showMessage("");
      return answer;
    } catch (error) {
      showMessage(error.message);
      return null;
    }
  }

  // ------------------------------------------------------------------ controls
  function fillSelect(select, values, labels) {
    select.replaceChildren(...values.map((value) => {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = (labels && labels[value]) || value;
      return option;
    }));
  }

  function readConfig() {
    const features = [...document.querySelectorAll("#features input:checked")].map((box) => box.value);
    return {
      dataset: $("dataset").value,
      noise: parseFloat($("noise").value),
      train_fraction: parseFloat($("train-fraction").value),
      n_points: parseInt($("n-points").value, 10),
      seed: parseInt($("seed").value, 10),
      features,
      hidden: config.hidden.slice(),
      activation: $("activation").value,
      learning_rate: parseFloat($("learning-rate").value),
      optimizer: $("optimizer").value,
      batch_size: parseInt($("batch-size").value, 10),
      l1: parseFloat($("l1").value),
      l2: parseFloat($("l2").value),
    };
  }

  function setSelect(select, value) {
    const text = String(value);
    if (![...select.options].some((o) => o.value === text)) {
      const option = document.createElement("option");
      option.value = option.textContent = text;
      select.append(option);
    }
    select.value = text;
  }

  function writeControls(values) {
    $("dataset").value = values.dataset;
    $("noise").value = values.noise;
    $("train-fraction").value = values.train_fraction;
    $("n-points").value = values.n_points;
    $("seed").value = values.seed;
    $("activation").value = values.activation;
    $("optimizer").value = values.optimizer;
    setSelect($("learning-rate"), values.learning_rate);
    $("batch-size").value = values.batch_size;
    setSelect($("l1"), values.l1);
    setSelect($("l2"), values.l2);
    for (const box of document.querySelectorAll("#features input")) box.checked = values.features.includes(box.value);
    showValues();
    showLayers();
  }

  function showValues() {
    $("noise-value").textContent = `${Math.round(parseFloat($("noise").value) * 100)}%`;
    $("train-fraction-value").textContent = `${Math.round(parseFloat($("train-fraction").value) * 100)}%`;
    const perceptron = config.hidden.length === 0 && $("activation").value === "step";
    $("mode").textContent = perceptron
      ? "Rosenblatt's perceptron: one neuron, a step activation and the perceptron learning rule. "
        + "It finds a separating line when one exists; on XOR it never settles."
      : config.hidden.length === 0
        ? "No hidden layer: a single neuron (logistic regression). Choose the step activation for the perceptron."
        : "A multi-layer perceptron trained by backpropagation.";
  }

  function showLayers() {
    $("layer-count").textContent = config.hidden.length;
    const box = $("units");
    box.replaceChildren(...config.hidden.map((units, index) => {
      const layer = document.createElement("span");
      layer.className = "layer";
      const minus = document.createElement("button");
      minus.type = "button";
      minus.textContent = "−";
      minus.dataset.layer = index;
      minus.className = "fewer";
      minus.setAttribute("aria-label", `fewer neurons in hidden layer ${index + 1}`);
      const plus = document.createElement("button");
      plus.type = "button";
      plus.textContent = "+";
      plus.className = "more";
      plus.dataset.layer = index;
      plus.setAttribute("aria-label", `more neurons in hidden layer ${index + 1}`);
      const count = document.createElement("span");
      count.className = "count";
      count.textContent = `${units} neurons`;
      minus.addEventListener("click", () => changeUnits(index, -1));
      plus.addEventListener("click", () => changeUnits(index, +1));
      layer.append(minus, count, plus);
      return layer;
    }));
  }

  function changeUnits(index, delta) {
    const units = config.hidden[index] + delta;
    if (units < 1 || units > options.max_units) return;
    config.hidden[index] = units;
    reconfigure();
  }

  let pending = null;
  async function reconfigure() {
    config = readConfig();
    showValues();
    showLayers();
    const values = config;
    pending = values;
    const answer = await send({ action: "config", config: values });
    if (answer && pending === values) history = [];
  }

  function setPlaying(value) {
    playing = value;
    const button = $("play");
    button.textContent = value ? "Pause" : "Play";
    button.classList.toggle("playing", value);
  }

  function bindControls() {
    for (const id of ["dataset", "noise", "train-fraction", "n-points", "seed", "activation",
      "optimizer", "learning-rate", "batch-size", "l1", "l2"]) {
      $(id).addEventListener("change", reconfigure);
    }
    $("noise").addEventListener("input", showValues);
    $("train-fraction").addEventListener("input", showValues);
    $("features").addEventListener("change", reconfigure);
    $("add-layer").addEventListener("click", () => {
      if (config.hidden.length >= options.max_hidden_layers) return;
      config.hidden.push(config.hidden.length ? config.hidden[config.hidden.length - 1] : 4);
      reconfigure();
    });
    $("remove-layer").addEventListener("click", () => {
      if (!config.hidden.length) return;
      config.hidden.pop();
      reconfigure();
    });
    $("play").addEventListener("click", async () => {
      const answer = await send({ action: playing ? "pause" : "play" });
      if (answer) setPlaying(answer.playing);
    });
    $("step").addEventListener("click", async () => {
      const answer = await send({ action: "step" });
      if (answer) setPlaying(false);
    });
    $("reset").addEventListener("click", async () => {
      history = [];
      await send({ action: "reset" });
    });
    $("speed").addEventListener("change", () => send({ action: "speed", updates: parseInt($("speed").value, 10) }));
    $("show-test").addEventListener("change", drawBoundary);
    $("as-python").addEventListener("click", showPython);
    $("python-close").addEventListener("click", () => $("python-dialog").close());
  }

  async function showPython() {
    try {
      const code = await api(`/api/sessions/${sessionId}/python`);
      $("python-code").textContent = code;
      const link = $("python-download");
      if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
      link.href = URL.createObjectURL(new Blob([code], { type: "text/x-python" }));
      $("python-dialog").showModal();
    } catch (error) {
      showMessage(error.message);
    }
  }

  // ------------------------------------------------------------------ drawing
  function bytesOf(map) {
    const text = atob(map.data);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return bytes;
  }

  function heatCanvas(map, grid) {
    const bytes = bytesOf(map);
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = grid;
    const context = canvas.getContext("2d");
    const image = context.createImageData(grid, grid);
    for (let i = 0; i < bytes.length && i < grid * grid; i++) {
      const code = bytes[i] * 3;
      image.data[i * 4] = LUT[code];
      image.data[i * 4 + 1] = LUT[code + 1];
      image.data[i * 4 + 2] = LUT[code + 2];
      image.data[i * 4 + 3] = 255;
    }
    context.putImageData(image, 0, 0);
    return canvas;
  }

  function drawBoundary() {
    const canvas = $("boundary");
    const context = canvas.getContext("2d");
    const size = canvas.width;
    context.clearRect(0, 0, size, size);
    if (frame) {
      context.imageSmoothingEnabled = true;
      context.globalAlpha = 0.8;
      context.drawImage(heatCanvas(frame.boundary, frame.grid), 0, 0, size, size);
      context.globalAlpha = 1;
    }
    if (!data) return;
    const extent = data.extent;
    const at = (v) => ((v + extent) / (2 * extent)) * size;
    const draw = (points, stroke) => {
      for (const [x1, x2, y] of points) {
        const code = data.regression
          ? Math.max(0, Math.min(255, Math.round((y + 1) * 127.5)))
          : (y > 0.5 ? 255 : 0);
        context.beginPath();
        context.arc(at(x1), size - at(x2), 3.2, 0, 2 * Math.PI);
        context.fillStyle = colourOf(code);
        context.fill();
        context.lineWidth = 1;
        context.strokeStyle = stroke;
        context.stroke();
      }
    };
    draw(data.train, "#fff");
    if ($("show-test").checked) draw(data.test, "#000");
  }

  function columnsOf() {
    return frame.neurons.map((layer) => layer.length);
  }

  function drawNetwork() {
    const canvas = $("net");
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    if (!frame) return;
    const counts = columnsOf();
    const box = 36;
    const left = 70;
    const right = 20;
    const gapX = counts.length > 1 ? (canvas.width - left - right - box) / (counts.length - 1) : 0;
    const gapY = Math.min(48, (canvas.height - 20) / Math.max(...counts));
    const position = (column, index) => {
      const n = counts[column];
      const top = (canvas.height - (n - 1) * gapY - box) / 2;
      return [left + column * gapX, top + index * gapY];
    };
    let largest = 1e-9;
    for (const layer of frame.weights) for (const row of layer.kernel) for (const w of row) largest = Math.max(largest, Math.abs(w));
    frame.weights.forEach((layer, column) => {
      layer.kernel.forEach((row, i) => row.forEach((w, j) => {
        const [x0, y0] = position(column, i);
        const [x1, y1] = position(column + 1, j);
        context.beginPath();
        context.moveTo(x0 + box, y0 + box / 2);
        context.lineTo(x1, y1 + box / 2);
        context.lineWidth = 0.4 + 6 * Math.abs(w) / largest;
        context.strokeStyle = w >= 0 ? `rgba(${POS},0.75)` : `rgba(${NEG},0.75)`;
        context.stroke();
      }));
    });
    context.imageSmoothingEnabled = true;
    frame.neurons.forEach((layer, column) => layer.forEach((map, index) => {
      const [x, y] = position(column, index);
      context.drawImage(heatCanvas(map, frame.grid), x, y, box, box);
      context.strokeStyle = "#444";
      context.lineWidth = 1;
      context.strokeRect(x + 0.5, y + 0.5, box - 1, box - 1);
    }));
    context.fillStyle = "#333";
    context.font = "12px system-ui, sans-serif";
    context.textAlign = "right";
    (data ? data.config.features : []).forEach((name, index) => {
      const [x, y] = position(0, index);
      context.fillText(FEATURE_LABELS[name] || name, x - 6, y + box / 2 + 4);
    });
    context.textAlign = "center";
    counts.forEach((n, column) => {
      const label = column === 0 ? "inputs" : column === counts.length - 1 ? "output" : `hidden ${column}`;
      context.fillText(label, position(column, 0)[0] + box / 2, 14);
    });
  }

  function drawLoss() {
    const canvas = $("loss");
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    if (history.length < 2) return;
    const first = history[0][0];
    const last = history[history.length - 1][0];
    const top = Math.max(1e-9, ...history.map((h) => Math.max(h[1] || 0, h[2] || 0)));
    const x = (step) => (last > first ? ((step - first) / (last - first)) * (canvas.width - 4) + 2 : 2);
    const y = (value) => canvas.height - 2 - (value / top) * (canvas.height - 6);
    for (const [column, colour] of [[2, "#999"], [1, "#222"]]) {
      context.beginPath();
      history.forEach((h, i) => (i ? context.lineTo(x(h[0]), y(h[column])) : context.moveTo(x(h[0]), y(h[column]))));
      context.strokeStyle = colour;
      context.lineWidth = 1.5;
      context.stroke();
    }
  }

  const percent = (value) => (value === null ? "–" : `${(value * 100).toFixed(1)}%`);
  const number = (value) => (value === null ? "–" : value.toFixed(3));

  function onFrame(next) {
    frame = next;
    if (history.length && next.step < history[history.length - 1][0]) history = [];
    history.push([next.step, next.train_loss, next.test_loss]);
    if (history.length > MAX_HISTORY) history = history.filter((_, i) => i % 2 === 0);
    if (next.train_accuracy !== null) maxTrainAccuracy = Math.max(maxTrainAccuracy, next.train_accuracy);
    if (next.test_accuracy !== null) maxTestAccuracy = Math.max(maxTestAccuracy, next.test_accuracy);
    $("epoch").textContent = next.epoch.toFixed(next.epoch < 10 ? 2 : 0);
    $("updates").textContent = next.step;
    $("train-loss").textContent = number(next.train_loss);
    $("test-loss").textContent = number(next.test_loss);
    $("train-acc").textContent = percent(next.train_accuracy);
    $("test-acc").textContent = percent(next.test_accuracy);
    const dataset = document.body.dataset;
    dataset.step = next.step;
    dataset.trainAccuracy = next.train_accuracy === null ? "" : next.train_accuracy;
    dataset.testAccuracy = next.test_accuracy === null ? "" : next.test_accuracy;
    dataset.maxTrainAccuracy = maxTrainAccuracy;
    dataset.maxTestAccuracy = maxTestAccuracy;
    dataset.frames = (parseInt(dataset.frames || "0", 10) + 1).toString();
    dataset.network = columnsOf().join("-");
    drawBoundary();
    drawNetwork();
    drawLoss();
  }

  function onData(next) {
    data = next;
    history = [];
    maxTrainAccuracy = 0;
    maxTestAccuracy = 0;
    document.body.dataset.config = JSON.stringify(next.config);
  }

  async function start() {
    try {
      options = await api("/api/options");
    } catch (error) {
      showMessage(`cannot reach the server: ${error.message}`);
      return;
    }
    fillSelect($("dataset"), options.datasets);
    fillSelect($("activation"), options.activations);
    fillSelect($("optimizer"), options.optimizers);
    $("features").replaceChildren(...options.features.map((name) => {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = name;
      box.id = `feature-${name}`;
      label.append(box, ` ${FEATURE_LABELS[name] || name}`);
      return label;
    }));
    config = options.defaults;
    writeControls(config);
    bindControls();
    try {
      const created = await api("/api/sessions", config);
      sessionId = created.id;
    } catch (error) {
      showMessage(error.message);
      return;
    }
    await send({ action: "speed", updates: parseInt($("speed").value, 10) });
    source = new EventSource(`/api/sessions/${sessionId}/events`);
    source.addEventListener("data", (event) => onData(JSON.parse(event.data)));
    source.addEventListener("frame", (event) => onFrame(JSON.parse(event.data)));
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED || source.readyState === EventSource.CONNECTING) {
        source.close();
        setPlaying(false);
        showMessage("the connection to the server was lost: reload the page to start again");
      }
    });
    window.addEventListener("pagehide", () => source.close());
    document.body.dataset.ready = "1";
  }

  start();
})();

// pystream live view: one WebSocket (/ws), JSON messages + binary pixels (SPEC.md section 3).
// A JSON {"type":"frame"} announces the binary message that follows it: an encoded image
// (gray, levels applied by the server; the colormap is applied here) or float32 spectra.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const token = params.get("token");

const state = {
  ws: null, attempt: 0, reconnectTimer: null,
  pendingMeta: null,            // the frame message waiting for its binary part
  colormaps: { gray: null }, colormap: "gray",
  levelsMode: "auto", levelMin: null, levelMax: null,
  lastImage: null,              // {meta, gray: Uint8ClampedArray (RGBA of the decoded image)}
  decoding: false, queued: null,
  frames: 0, bytes: 0, frameTimes: [], latencyMs: null,
  paused: false, stopRequested: false, stopAction: "",
  pingSent: 0, probeAt: 0, probeId: 0,
  spectra: null,                // {nFreq, rows: Float32Array ring, count, levels, latest, ...}
  wfHeight: 300,
};
window.pystream = state;  // for tests and curious users

const imageCanvas = $("image");
const imageCtx = imageCanvas.getContext("2d", { willReadFrequently: true });
const scratch = document.createElement("canvas");
const scratchCtx = scratch.getContext("2d", { willReadFrequently: true });

// ---------------------------------------------------------------- log and status
function logEvent(text, level = "info") {
  const li = document.createElement("li");
  li.className = level;
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  const log = $("log");
  log.insertBefore(li, log.firstChild);
  while (log.children.length > 100) log.removeChild(log.lastChild);
}

function setConn(text, cls) {
  const el = $("conn");
  el.textContent = text;
  el.className = `conn ${cls}`;
}

function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1 << 30) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${(n / (1 << 30)).toFixed(2)} GiB`;
}

function fmtValue(v) {
  if (v === null || v === undefined) return "–";
  if (Array.isArray(v)) return v.map(fmtValue).join(", ");
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 1e5 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(4) : v.toPrecision(6);
}

// ---------------------------------------------------------------- connection
function wsUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const base = location.pathname.replace(/[^/]*$/, "");
  return `${proto}//${location.host}${base}ws` + (token ? `?token=${encodeURIComponent(token)}` : "");
}

function connect() {
  clearTimeout(state.reconnectTimer);
  setConn(state.attempt ? `reconnecting (attempt ${state.attempt})…` : "connecting…", "connecting");
  const ws = new WebSocket(wsUrl());
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  ws.onopen = () => {
    state.attempt = 0;
    setConn("connected", "open");
    logEvent("connected");
  };
  ws.onmessage = (ev) => {
    if (typeof ev.data === "string") onText(ev.data);
    else onBinary(ev.data);
  };
  ws.onclose = (ev) => {
    if (state.ws !== ws) return;
    state.ws = null;
    state.pendingMeta = null;
    state.attempt += 1;
    // exponential backoff with jitter: 0.5 s, 1 s, 2 s ... at most 10 s
    const delay = Math.min(10000, 500 * 2 ** Math.min(state.attempt - 1, 5)) * (0.8 + 0.4 * Math.random());
    setConn(`disconnected: reconnecting in ${(delay / 1000).toFixed(1)} s`, "closed");
    logEvent(`connection closed (${ev.code}${ev.reason ? ": " + ev.reason : ""}); reconnecting`, "warning");
    state.reconnectTimer = setTimeout(connect, delay);
  };
  ws.onerror = () => {};  // onclose follows and says it
}

function send(message) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify(message));
    return true;
  }
  return false;
}

function sendView() {
  const box = $("image-box");
  const dpr = window.devicePixelRatio || 1;
  send({
    type: "view",
    width: Math.max(16, Math.round(box.clientWidth * dpr)),
    height: Math.max(16, Math.round(box.clientHeight * dpr)),
    format: $("format").value,
    max_fps: Number($("max-fps").value) || 30,
  });
}

// ---------------------------------------------------------------- messages
function onText(text) {
  let msg;
  try { msg = JSON.parse(text); } catch (e) { return; }
  switch (msg.type) {
    case "welcome": onWelcome(msg); break;
    case "frame": state.pendingMeta = msg; break;
    case "status": logEvent(msg.message, msg.status); break;
    case "control_state": onControlState(msg); break;
    case "stats": onStats(msg.data); break;
    case "pong":
      $("c-ping").textContent = `${(performance.now() - state.pingSent).toFixed(1)} ms`;
      logEvent("pong");
      break;
    case "probe": onProbe(msg); break;
  }
}

function onWelcome(msg) {
  $("title").textContent = msg.title || "pystream";
  document.title = `${msg.title || "pystream"} live view`;
  state.colormaps = msg.colormaps || state.colormaps;
  const select = $("colormap");
  const current = select.value || msg.colormap || "gray";
  select.innerHTML = "";
  for (const name of Object.keys(state.colormaps)) {
    const opt = document.createElement("option");
    opt.value = opt.textContent = name;
    select.appendChild(opt);
  }
  select.value = state.colormaps[current] ? current : "gray";
  state.colormap = select.value;
  state.stopAction = msg.stop_action || "";
  $("stop-help").textContent = `Stop ${state.stopAction}.`;
  $("stop-text").textContent = `Stop ${state.stopAction}.`;
  if (!$("max-fps").dataset.touched) $("max-fps").value = msg.fps;
  $("spectra-box").hidden = !msg.spectra;
  $("wf-height-label").hidden = !msg.spectra;
  onControlState({ paused: msg.paused, stop_requested: msg.stop_requested });
  logEvent(`welcome: up to ${msg.fps} fps${msg.paused ? ", broadcast paused" : ""}`);
  sendView();
}

function onControlState(msg) {
  state.paused = !!msg.paused;
  state.stopRequested = !!msg.stop_requested;
  const pause = $("pause");
  pause.textContent = state.paused ? "Resume" : "Pause";
  pause.classList.toggle("active", state.paused);
  $("broadcast").hidden = !(state.paused || state.stopRequested);
  $("broadcast").textContent = state.stopRequested ? "stop requested" : "broadcast paused";
  $("stop").disabled = state.stopRequested;
}

function onStats(data) {
  $("c-clients").textContent = data.clients_connected;
  if (data.client) $("c-skips").textContent = data.client.skips;
  const v = data.viewer || {};
  if (v.state !== undefined) {
    $("c-stream").textContent = `${v.state}, ${(v.recv_fps || 0).toFixed(1)} fps in`;
    $("source").textContent = v.source || "";
  }
}

function onBinary(buffer) {
  const announced = state.pendingMeta;
  state.pendingMeta = null;
  if (!announced) return;  // pixels with no frame message: ignore
  const meta = announced.data;
  state.bytes += buffer.byteLength;
  $("c-bytes").textContent = fmtBytes(state.bytes);
  if (meta.kind === "spectrum") onSpectrum(meta, buffer);
  else onImage(meta, buffer);
}

// ---------------------------------------------------------------- images
function onImage(meta, buffer) {
  state.frames += 1;
  const now = performance.now();
  state.frameTimes.push(now);
  while (state.frameTimes.length && now - state.frameTimes[0] > 2000) state.frameTimes.shift();
  if (meta.t_source) state.latencyMs = Date.now() - meta.t_source * 1000;
  const item = { meta, blob: new Blob([buffer], { type: `image/${meta.format}` }) };
  if (state.decoding) { state.queued = item; return; }  // the newest wins
  decode(item);
}

async function decode(item) {
  state.decoding = true;
  try {
    const bitmap = await createImageBitmap(item.blob);
    const { meta } = item;
    scratch.width = bitmap.width;
    scratch.height = bitmap.height;
    scratchCtx.drawImage(bitmap, 0, 0);
    bitmap.close();
    const decoded = scratchCtx.getImageData(0, 0, scratch.width, scratch.height);
    state.lastImage = { meta, pixels: decoded };
    render();
  } catch (e) {
    logEvent(`an image could not be decoded: ${e}`, "warning");
  }
  state.decoding = false;
  if (state.queued) {
    const next = state.queued;
    state.queued = null;
    decode(next);
  }
}

// 256 RGB entries: the colormap, with manual levels composed in (the image carries
// the server's levels: value = lo + g / 255 * (hi - lo))
function currentLut(meta) {
  const table = state.colormaps[state.colormap];
  const lut = new Uint8ClampedArray(256 * 3);
  let lo = meta.levels[0], hi = meta.levels[1];
  const manual = state.levelsMode === "manual" && state.levelMin !== null && state.levelMax !== null
    && state.levelMax > state.levelMin;
  for (let g = 0; g < 256; g++) {
    let idx = g;
    if (manual) {
      const value = lo + (g / 255) * (hi - lo);
      idx = Math.round(255 * (value - state.levelMin) / (state.levelMax - state.levelMin));
      idx = Math.max(0, Math.min(255, idx));
    }
    if (table) {
      lut[3 * g] = table[3 * idx]; lut[3 * g + 1] = table[3 * idx + 1]; lut[3 * g + 2] = table[3 * idx + 2];
    } else {
      lut[3 * g] = lut[3 * g + 1] = lut[3 * g + 2] = idx;
    }
  }
  return lut;
}

function render() {
  const img = state.lastImage;
  if (!img) return;
  const { meta, pixels } = img;
  if (imageCanvas.width !== pixels.width || imageCanvas.height !== pixels.height) {
    imageCanvas.width = pixels.width;
    imageCanvas.height = pixels.height;
  }
  const identity = state.colormap === "gray" && state.levelsMode === "auto";
  if (meta.color || identity) {
    imageCtx.putImageData(pixels, 0, 0);
  } else {
    const lut = currentLut(meta);
    const src = pixels.data;
    const out = imageCtx.createImageData(pixels.width, pixels.height);
    const dst = out.data;
    for (let i = 0; i < src.length; i += 4) {
      const g = 3 * src[i];
      dst[i] = lut[g]; dst[i + 1] = lut[g + 1]; dst[i + 2] = lut[g + 2]; dst[i + 3] = 255;
    }
    imageCtx.putImageData(out, 0, 0);
  }
  $("no-image").hidden = true;
  $("c-frames").textContent = state.frames;
  const times = state.frameTimes;
  const fps = times.length > 1 ? (times.length - 1) * 1000 / (times[times.length - 1] - times[0]) : 0;
  $("c-fps").textContent = fps.toFixed(1);
  $("c-latency").textContent = state.latencyMs === null ? "–" : `${state.latencyMs.toFixed(0)} ms`;
  $("c-image").textContent = `${meta.source_width}×${meta.source_height} ${meta.dtype}, sent ` +
    `${meta.width}×${meta.height} ${meta.format} (1:${meta.bin}), #${meta.uid}`;
  if (state.levelsMode === "auto") {
    $("level-min").placeholder = fmtValue(meta.levels[0]);
    $("level-max").placeholder = fmtValue(meta.levels[1]);
  }
}

// the real value under the mouse, asked of the server (not the JPEG's value)
imageCanvas.addEventListener("mousemove", (ev) => {
  const img = state.lastImage;
  if (!img) return;
  // the canvas is letterboxed in its box (object-fit: contain): find the drawn area
  const rect = imageCanvas.getBoundingClientRect();
  const scale = Math.min(rect.width / imageCanvas.width, rect.height / imageCanvas.height);
  const left = rect.left + (rect.width - imageCanvas.width * scale) / 2;
  const top = rect.top + (rect.height - imageCanvas.height * scale) / 2;
  const ix = Math.floor((ev.clientX - left) / scale);
  const iy = Math.floor((ev.clientY - top) / scale);
  if (ix < 0 || iy < 0 || ix >= imageCanvas.width || iy >= imageCanvas.height) {
    $("probe").textContent = "outside the image";
    return;
  }
  const x = ix * img.meta.bin, y = iy * img.meta.bin;
  const now = performance.now();
  if (now - state.probeAt < 66) return;  // at most 15 a second
  state.probeAt = now;
  send({ type: "probe", x, y, id: ++state.probeId });
});
imageCanvas.addEventListener("mouseleave", () => {
  $("probe").textContent = "move the mouse over the image for pixel values";
});

function onProbe(msg) {
  $("probe").textContent = msg.value === null
    ? `x ${msg.x}, y ${msg.y}: outside the frame`
    : `x ${msg.x}, y ${msg.y}: ${fmtValue(msg.value)}`;
}

// ---------------------------------------------------------------- spectra
function onSpectrum(meta, buffer) {
  const values = new Float32Array(buffer);
  const nFreq = meta.n_freq;
  const latest = values.subarray(0, nFreq);
  const rows = values.subarray(nFreq);
  let s = state.spectra;
  const capacity = 1200;
  if (!s || meta.reset || s.nFreq !== nFreq) {
    s = state.spectra = { nFreq, ring: new Float32Array(capacity * nFreq), next: 0, count: 0 };
  }
  for (let r = 0; r < meta.n_rows; r++) {
    s.ring.set(rows.subarray(r * nFreq, (r + 1) * nFreq), s.next * nFreq);
    s.next = (s.next + 1) % capacity;
    s.count = Math.min(s.count + 1, capacity);
  }
  s.latest = Float32Array.from(latest);
  s.meta = meta;
  s.received = (s.received || 0) + meta.n_rows;
  drawSpectrum();
  drawWaterfall();
  const delay = meta.t_source ? ((Date.now() / 1000 - meta.t_source)).toFixed(2) : "–";
  $("spectra-info").textContent = `${nFreq} channels, ${meta.freq_first.toFixed(2)}–` +
    `${meta.freq_last.toFixed(2)} ${meta.freq_label.includes("MHz") ? "MHz" : ""}, ` +
    `${s.received} spectra${meta.missed ? `, ${meta.missed} skipped` : ""}, delay ${delay} s`;
}

function fitCanvas(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  return dpr;
}

function niceTicks(lo, hi, n) {
  const span = hi - lo || 1;
  const step0 = span / n;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((v) => v >= step0);
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) ticks.push(t);
  return ticks;
}

const MARGIN_LEFT = 56;

function drawSpectrum() {
  const s = state.spectra;
  const canvas = $("spectrum");
  const dpr = fitCanvas(canvas);
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height;
  const left = MARGIN_LEFT * dpr, bottom = 18 * dpr;
  ctx.fillStyle = "#1f2226";
  ctx.fillRect(0, 0, W, H);
  if (!s) return;
  const { meta, latest } = s;
  let lo = Infinity, hi = -Infinity;
  const logs = new Float32Array(latest.length);
  for (let i = 0; i < latest.length; i++) {
    const v = latest[i] > 0 ? Math.log10(latest[i]) : NaN;
    logs[i] = v;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!(hi > lo)) { hi = lo + 1; }
  const pw = W - left, ph = H - bottom;
  ctx.font = `${11 * dpr}px sans-serif`;
  ctx.fillStyle = "#9aa0a6";
  ctx.strokeStyle = "#333";
  for (const t of niceTicks(meta.freq_first, meta.freq_last, 8)) {
    const x = left + (t - meta.freq_first) / (meta.freq_last - meta.freq_first || 1) * pw;
    ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, ph); ctx.stroke();
    ctx.fillText(t.toFixed(t % 1 ? 1 : 0), x - 8 * dpr, H - 4 * dpr);
  }
  for (const t of niceTicks(lo, hi, 4)) {
    const y = ph - (t - lo) / (hi - lo) * ph;
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(W, y); ctx.stroke();
    ctx.fillText(`1e${t.toFixed(1)}`, 2 * dpr, y + 4 * dpr);
  }
  ctx.strokeStyle = "#4aa3ff";
  ctx.lineWidth = dpr;
  ctx.beginPath();
  let pen = false;
  for (let i = 0; i < logs.length; i++) {
    if (Number.isNaN(logs[i])) { pen = false; continue; }
    const x = left + (i / Math.max(1, logs.length - 1)) * pw;
    const y = ph - (logs[i] - lo) / (hi - lo) * ph;
    if (pen) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    pen = true;
  }
  ctx.stroke();
  ctx.fillText(meta.freq_label, left + 4 * dpr, 12 * dpr);
}

function drawWaterfall() {
  const s = state.spectra;
  const canvas = $("waterfall");
  if (!s || !s.count) return;
  const nFreq = s.nFreq;
  const rowsShown = Math.min(s.count, state.wfHeight);
  // newest at the top, one canvas row per spectrum; CSS stretches it to the box
  if (canvas.width !== nFreq || canvas.height !== state.wfHeight) {
    canvas.width = nFreq;
    canvas.height = state.wfHeight;
  }
  const ctx = canvas.getContext("2d");
  const out = ctx.createImageData(nFreq, state.wfHeight);
  const dst = out.data;
  for (let o = 3; o < dst.length; o += 4) dst[o] = 255;  // rows not yet received: black
  const table = state.colormaps[state.colormap] || state.colormaps.gray;
  const [lo, hi] = s.meta.levels;
  const scale = 255 / (hi - lo || 1);
  const capacity = s.ring.length / nFreq;
  for (let r = 0; r < rowsShown; r++) {
    const src = ((s.next - 1 - r) % capacity + capacity) % capacity;
    const base = src * nFreq;
    for (let c = 0; c < nFreq; c++) {
      let idx = Math.round((s.ring[base + c] - lo) * scale);
      idx = idx < 0 ? 0 : idx > 255 ? 255 : idx;
      const o = 4 * (r * nFreq + c);
      if (table) { dst[o] = table[3 * idx]; dst[o + 1] = table[3 * idx + 1]; dst[o + 2] = table[3 * idx + 2]; }
      else { dst[o] = dst[o + 1] = dst[o + 2] = idx; }
      dst[o + 3] = 255;
    }
  }
  ctx.putImageData(out, 0, 0);
}

// ---------------------------------------------------------------- controls
$("pause").addEventListener("click", () => {
  send({ type: state.paused ? "resume" : "pause" });
});
$("stop").addEventListener("click", () => {
  $("stop-dialog").showModal();
});
$("stop-dialog").addEventListener("close", () => {
  if ($("stop-dialog").returnValue === "confirm") {
    send({ type: "stop" });
    logEvent("stop sent", "warning");
  }
});
$("ping").addEventListener("click", () => {
  state.pingSent = performance.now();
  if (send({ type: "ping" })) logEvent("ping");
});
$("colormap").addEventListener("change", (ev) => {
  state.colormap = ev.target.value;
  render();
  drawWaterfall();
});
function levelsChanged() {
  state.levelsMode = $("levels").value;
  $("manual-levels").hidden = state.levelsMode !== "manual";
  const lo = parseFloat($("level-min").value), hi = parseFloat($("level-max").value);
  state.levelMin = Number.isFinite(lo) ? lo : (state.lastImage ? state.lastImage.meta.levels[0] : null);
  state.levelMax = Number.isFinite(hi) ? hi : (state.lastImage ? state.lastImage.meta.levels[1] : null);
  render();
}
$("levels").addEventListener("change", levelsChanged);
$("level-min").addEventListener("input", levelsChanged);
$("level-max").addEventListener("input", levelsChanged);
$("max-fps").addEventListener("change", (ev) => { ev.target.dataset.touched = "1"; sendView(); });
$("format").addEventListener("change", sendView);
$("wf-height").addEventListener("change", (ev) => {
  state.wfHeight = Math.max(10, Math.min(1200, Number(ev.target.value) || 300));
  drawWaterfall();
});
$("fullscreen").addEventListener("click", () => {
  const views = $("views");
  if (document.fullscreenElement) document.exitFullscreen();
  else if (views.requestFullscreen) views.requestFullscreen();
});
let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { sendView(); drawSpectrum(); drawWaterfall(); }, 200);
});

connect();

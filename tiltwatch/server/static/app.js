// tiltwatch live dashboard: plain JS, no build step, nothing loaded from elsewhere.
//
// Asks for the API key (kept in sessionStorage), then:
//  - lists the streams (GET /api/v1/streams every 3 s) with start/stop buttons;
//  - shows each stream live: the annotated MJPEG when the server serves frames, otherwise a
//    canvas drawing boxes and labels from the WebSocket's frame messages;
//  - the mood of each zone: mean smoothed valence of the faces seen there in the last 10 s;
//  - the alert feed (WebSocket "alert_open" and "alert", plus the last hour from /api/v1/alerts);
//  - visit timelines of the last hour as an SVG chart (GET /api/v1/visits every 15 s).
// The header's "Photo" tab (#photo) opens a page to analyse one image (POST /api/v1/analyze/image):
// picked or dropped, shown with its faces drawn on a canvas over it (boxes, head-pose axes, labels)
// beside a table of every face's emotion probabilities and pose.
"use strict";

const KEY_STORE = "tiltwatch.key";
const EMOTIONS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"];
const MOOD_WINDOW_S = 10;
const MAX_ALERTS = 100;
const COLOURS = {
  neutral: "#c8c8c8", happiness: "#3cc83c", surprise: "#ffc800", sadness: "#2878c8",
  anger: "#e62828", disgust: "#648c28", fear: "#b43cb4", contempt: "#a05078",
};

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, text = "") => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
};
const svgEl = (tag, attrs = {}) => {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
};
const hhmmss = (epoch) => new Date(epoch * 1000).toLocaleTimeString([], {hour12: false});

let key = sessionStorage.getItem(KEY_STORE);
let allowFrames = false;
let socket = null;
let timers = [];
const streams = new Map();   // id -> {card, lastFrame, state}
const moodSamples = [];      // {at, zone, track, valence}

// --- API -----------------------------------------------------------------------------------

async function api(path, options = {}) {
  const headers = Object.assign({"Authorization": `Bearer ${key}`}, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, {headers}));
  if (response.status === 401) { signOut("The API key was refused."); throw new Error("unauthorised"); }
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error(body?.error || `${response.status} ${response.statusText}`);
  return body;
}

// --- sign in / out -------------------------------------------------------------------------

function showLogin(message = "") {
  $("#app").hidden = true;
  $("#photo").hidden = true;
  $("#tabs").hidden = true;
  $("#logout").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message;
  $("#key-input").focus();
}

function signOut(message = "") {
  sessionStorage.removeItem(KEY_STORE);
  key = null;
  timers.forEach(clearInterval);
  timers = [];
  if (socket) { socket.onclose = null; socket.close(); socket = null; }
  streams.clear();
  $("#streams").replaceChildren();
  showLogin(message);
}

async function signIn(candidate) {
  key = candidate;
  try {
    const listing = await api("/api/v1/streams");
    sessionStorage.setItem(KEY_STORE, key);
    start(listing);
  } catch (err) {
    if (err.message !== "unauthorised") showLogin(err.message);
  }
}

function start(listing) {
  $("#login").hidden = true;
  $("#tabs").hidden = false;
  showPage();
  $("#logout").hidden = false;
  renderStreams(listing);
  connect();
  loadAlerts();
  loadVisits();
  timers.push(setInterval(refreshStreams, 3000));
  timers.push(setInterval(loadVisits, 15000));
  timers.push(setInterval(renderMood, 1000));
}

// --- streams -------------------------------------------------------------------------------

async function refreshStreams() {
  try { renderStreams(await api("/api/v1/streams")); } catch (err) { /* shown by the connection badge */ }
}

function renderStreams(listing) {
  allowFrames = listing.allow_frames;
  const seen = new Set();
  for (const s of listing.streams) {
    seen.add(s.id);
    let entry = streams.get(s.id);
    if (!entry) {
      entry = {card: streamCard(s), lastFrame: -1};
      streams.set(s.id, entry);
      $("#streams").append(entry.card);
    }
    const card = entry.card;
    const state = $(".stream-state", card);
    state.textContent = s.state;
    state.className = `stream-state state-${s.state}`;
    $(".stream-fps", card).textContent = `${s.fps.toFixed(1)} fps`;
    $(".stream-dropped", card).textContent = `${s.dropped_frames} dropped`;
    $(".stream-reconnects", card).textContent = `${s.reconnects} reconnects`;
    $(".stream-error", card).textContent = s.last_error || "";
    // a stream that runs, or is on its way back (a camera actor reconnecting or restarting), cannot be started
    $(".start", card).disabled = ["running", "starting", "degraded", "pending", "reconnecting", "restarting"].includes(s.state);
    $(".stop", card).disabled = !$(".start", card).disabled;
    if (allowFrames && ["running", "degraded", "reconnecting"].includes(s.state)) ensureMjpeg(card, s.id);
  }
  for (const [id, entry] of streams) {
    if (!seen.has(id)) { entry.card.remove(); streams.delete(id); }
  }
  $("#streams-empty").hidden = streams.size > 0;
}

function streamCard(s) {
  const card = el("div", {class: "stream", "data-stream": s.id});
  const head = el("div", {class: "stream-head"});
  head.append(el("span", {class: "stream-name"}, s.id), el("span", {class: "stream-state"}),
              el("span", {class: "stream-fps"}), el("span", {class: "stream-faces"}, "0 faces"),
              el("span", {class: "stream-dropped"}), el("span", {class: "stream-reconnects"}));
  const frame = el("span", {class: "stream-frame"}, "frame ");
  frame.append(el("span", {class: "frame-counter"}, "–"));
  head.append(frame);
  const view = el("div", {class: "view"});
  if (allowFrames) {
    view.append(el("img", {class: "live", alt: `annotated live view of ${s.id}`}));
  } else {
    view.append(el("canvas", {class: "live", width: "960", height: "540"}));
    view.append(el("p", {class: "hint"}, "Frames are not served by this server: boxes drawn from live data."));
  }
  const actions = el("div", {class: "stream-actions"});
  const startBtn = el("button", {class: "start", type: "button"}, "Start");
  const stopBtn = el("button", {class: "stop", type: "button"}, "Stop");
  startBtn.onclick = () => control(s.id, "start");
  stopBtn.onclick = () => control(s.id, "stop");
  actions.append(startBtn, stopBtn, el("span", {class: "stream-error error"}));
  card.append(head, view, actions);
  return card;
}

function ensureMjpeg(card, id) {
  const img = $("img.live", card);
  if (!img || img.dataset.live === "1") return;
  img.dataset.live = "1";
  img.onerror = () => { img.dataset.live = "0"; img.removeAttribute("src"); };  // retried on the next refresh
  img.src = `/api/v1/streams/${encodeURIComponent(id)}/mjpeg?key=${encodeURIComponent(key)}`;
}

async function control(id, action) {
  try {
    await api(`/api/v1/streams/${encodeURIComponent(id)}/${action}`, {method: "POST"});
  } catch (err) {
    $(".stream-error", streams.get(id).card).textContent = err.message;
  }
  if (action === "stop") { const img = $("img.live", streams.get(id).card); if (img) img.dataset.live = "0"; }
  refreshStreams();
}

// --- the WebSocket -------------------------------------------------------------------------

function connect(delay = 1000) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/api/v1/ws`);
  socket.onopen = () => socket.send(JSON.stringify({type: "auth", key}));
  socket.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "hello") { setConn(true); (msg.open_alerts || []).forEach((a) => addAlert(a, true)); }
    else if (msg.type === "frame") onFrame(msg);
    else if (msg.type === "alert_open" || msg.type === "alert") addAlert(msg, true);
    else if (msg.type === "error") setConn(false, msg.error);
  };
  socket.onclose = () => {
    setConn(false);
    if (key) setTimeout(() => connect(Math.min(delay * 2, 15000)), delay);
  };
}

function setConn(on, why = "") {
  const badge = $("#conn");
  badge.textContent = on ? "live" : (why || "offline");
  badge.className = `conn ${on ? "on" : "off"}`;
}

function onFrame(msg) {
  const entry = streams.get(msg.stream);
  if (!entry) { refreshStreams(); return; }
  entry.lastFrame = msg.frame;
  $(".frame-counter", entry.card).textContent = String(msg.frame);
  $(".stream-faces", entry.card).textContent = `${msg.faces.length} face${msg.faces.length === 1 ? "" : "s"}`;
  const now = Date.now() / 1000;
  for (const f of msg.faces) {
    if (f.valence !== null) moodSamples.push({at: now, zone: f.zone || msg.stream, track: f.track_id, valence: f.valence});
  }
  const canvas = $("canvas.live", entry.card);
  if (canvas) drawFaces(canvas, msg);
}

function drawFaces(canvas, msg) {
  if (canvas.width !== msg.width || canvas.height !== msg.height) {
    canvas.width = msg.width;
    canvas.height = msg.height;
  }
  const g = canvas.getContext("2d");
  g.fillStyle = "#1d2b22";
  g.fillRect(0, 0, canvas.width, canvas.height);
  const scale = Math.max(canvas.width, canvas.height) / 1000;
  g.lineWidth = Math.max(2, 3 * scale);
  g.font = `${Math.round(18 * scale)}px system-ui, sans-serif`;
  for (const f of msg.faces) {
    const [x, y, w, h] = f.box;
    const colour = COLOURS[f.label] || "#ffffff";
    g.strokeStyle = colour;
    g.strokeRect(x, y, w, h);
    const text = `#${f.track_id ?? "?"} ${f.label ?? ""}`;
    const tw = g.measureText(text).width + 8;
    g.fillStyle = colour;
    g.fillRect(x, y - 24 * scale, tw, 24 * scale);
    g.fillStyle = "#000";
    g.fillText(text, x + 4, y - 6 * scale);
  }
}

// --- mood per zone -------------------------------------------------------------------------

function valenceColour(v) {
  const t = Math.max(-1, Math.min(1, v));
  return t >= 0 ? `rgb(${Math.round(200 - 150 * t)}, 200, ${Math.round(200 - 150 * t)})`
                : `rgb(230, ${Math.round(200 + 160 * t)}, ${Math.round(200 + 160 * t)})`;
}

function renderMood() {
  const now = Date.now() / 1000;
  while (moodSamples.length && moodSamples[0].at < now - MOOD_WINDOW_S) moodSamples.shift();
  const zones = new Map();
  for (const s of moodSamples) {
    const z = zones.get(s.zone) || {sum: 0, n: 0, tracks: new Set()};
    z.sum += s.valence;
    z.n += 1;
    if (s.track !== null && s.at > now - 2) z.tracks.add(s.track);
    zones.set(s.zone, z);
  }
  const box = $("#mood");
  if (!zones.size) { box.replaceChildren(el("p", {class: "hint"}, "no faces in the last 10 s")); return; }
  const rows = [...zones.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, z]) => {
    const mean = z.sum / z.n;
    const row = el("div", {class: "zone", "data-zone": name});
    const bar = el("div", {class: "bar"});
    const fill = el("div", {class: "fill"});
    fill.style.width = `${Math.abs(mean) * 50}%`;
    fill.style.left = mean >= 0 ? "50%" : `${50 - Math.abs(mean) * 50}%`;
    fill.style.background = valenceColour(mean);
    bar.append(fill);
    row.append(el("span", {class: "zone-name"}, name), bar,
               el("span", {class: "zone-valence"}, (mean >= 0 ? "+" : "") + mean.toFixed(2)),
               el("span", {class: "zone-faces"}, `${z.tracks.size} face${z.tracks.size === 1 ? "" : "s"}`));
    return row;
  });
  box.replaceChildren(...rows);
}

// --- alerts --------------------------------------------------------------------------------

const shownAlerts = new Set();

function addAlert(a, live) {
  const opened = a.type === "alert_open";
  const id = [opened ? "open" : "closed", a.visit_key, a.kind, a.start].join("|");
  if (shownAlerts.has(id)) return;  // e.g. sent again in "hello" after a reconnect
  shownAlerts.add(id);
  const li = el("li", {class: `alert ${opened ? "alert-open" : "alert-closed"} kind-${a.kind}`});
  const where = [a.stream || a.camera, a.zone].filter(Boolean).join(" · ");
  const what = opened ? `${a.kind} opened` : `${a.kind}${live ? " closed" : ""}`;
  const detail = opened
    ? `${a.emotion ? a.emotion + " " : ""}${a.value.toFixed(2)} (threshold ${a.threshold})`
    : `${Math.max(0, a.end - a.start).toFixed(1)} s, peak ${a.value.toFixed(2)}${a.evidence?.emotion ? " " + a.evidence.emotion : ""}`;
  li.append(el("time", {}, hhmmss(opened ? a.start : a.end)), el("strong", {}, what),
            el("span", {class: "where"}, `${where} · track #${a.track_id ?? "?"}`),
            el("span", {class: "detail"}, detail));
  const list = $("#alerts");
  list.prepend(li);
  while (list.children.length > MAX_ALERTS) list.lastChild.remove();
  $("#alerts-empty").hidden = true;
}

async function loadAlerts() {
  try {
    const body = await api(`/api/v1/alerts?start=${Math.floor(Date.now() / 1000) - 3600}&limit=50`);
    body.alerts.forEach((a) => addAlert(Object.assign({type: "alert"}, a), false));
  } catch (err) { /* the live feed still works */ }
}

// --- visit timelines -----------------------------------------------------------------------

async function loadVisits() {
  const now = Date.now() / 1000;
  let body;
  try { body = await api(`/api/v1/visits?start=${Math.floor(now - 3600)}&limit=400`); } catch (err) { return; }
  const visits = body.visits.slice(-40);
  const box = $("#visits");
  if (!visits.length) { box.replaceChildren(el("p", {class: "hint"}, "no visits in the last hour")); return; }
  const t0 = Math.min(...visits.map((v) => v.start));
  const t1 = Math.max(now, ...visits.map((v) => v.end));
  const W = 900, left = 150, row = 16, top = 22, H = top + row * visits.length + 6;
  const x = (t) => left + ((t - t0) / Math.max(t1 - t0, 1)) * (W - left - 10);
  const svg = svgEl("svg", {viewBox: `0 0 ${W} ${H}`, class: "timeline", role: "img",
                            "aria-label": "visit timelines"});
  for (let i = 0; i <= 4; i++) {
    const t = t0 + ((t1 - t0) * i) / 4;
    svg.append(svgEl("line", {x1: x(t), x2: x(t), y1: top - 4, y2: H, class: "grid"}));
    const anchor = i === 0 ? "start" : i === 4 ? "end" : "middle";
    const label = svgEl("text", {x: x(t), y: 12, class: "tick", "text-anchor": anchor});
    label.textContent = hhmmss(t);
    svg.append(label);
  }
  visits.forEach((v, i) => {
    const y = top + i * row;
    const name = svgEl("text", {x: left - 6, y: y + 11, class: "visit-label", "text-anchor": "end"});
    name.textContent = `${v.camera} #${v.track_id} ${v.zones.join(",") || "–"}`;
    const bar = svgEl("rect", {x: x(v.start), y: y + 2, width: Math.max(2, x(v.end) - x(v.start)), height: row - 4,
                               rx: 3, class: `visit-bar${v.closed ? "" : " open"}`, fill: valenceColour(v.mean_valence)});
    const title = svgEl("title");
    title.textContent = `#${v.track_id} ${hhmmss(v.start)}–${hhmmss(v.end)} · ${(v.end - v.start).toFixed(0)} s · ` +
      `${v.dominant} · valence ${v.mean_valence.toFixed(2)}` + (v.attention !== null ? ` · attention ${(v.attention * 100).toFixed(0)}%` : "");
    bar.append(title);
    svg.append(name, bar);
  });
  box.replaceChildren(svg);
}

// --- pages: the live view (#live, the default) and the photo page (#photo) -----------------

function showPage() {
  if (!key) return;
  const photo = location.hash === "#photo";
  $("#app").hidden = photo;
  $("#photo").hidden = !photo;
  $("#page-name").textContent = photo ? "photo" : "live";
  document.title = `tiltwatch · ${photo ? "photo" : "live"}`;
  for (const tab of document.querySelectorAll("#tabs .tab")) {
    if (tab.getAttribute("href") === (photo ? "#photo" : "#live")) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
}

// --- the photo page ------------------------------------------------------------------------

let photoRequest = 0;  // the latest upload; answers to earlier ones are dropped
let photoUrl = null;   // object URL of the image shown

async function analysePhoto(file) {
  const request = ++photoRequest;
  $("#photo-error").textContent = "";
  $("#photo-status").textContent = `analysing ${file.name} (${(file.size / 1024).toFixed(0)} KB)…`;
  const form = new FormData();
  form.append("file", file, file.name);
  let result;
  try {
    result = await api("/api/v1/analyze/image", {method: "POST", body: form});
  } catch (err) {
    if (request !== photoRequest) return;
    $("#photo-status").textContent = "";
    $("#photo-result").hidden = true;
    // a TypeError: no answer at all (the server closed the connection, e.g. on a very large upload)
    $("#photo-error").textContent = err instanceof TypeError
      ? `${file.name}: the upload did not get through (${err.message}); is the file larger than the server accepts?`
      : err.message;
    return;
  }
  if (request !== photoRequest) return;
  $("#photo-status").textContent = "";
  showPhoto(file, result);
}

function showPhoto(file, result) {
  if (photoUrl) URL.revokeObjectURL(photoUrl);
  photoUrl = URL.createObjectURL(file);
  const img = $("#photo-img");
  const canvas = $("#photo-canvas");
  canvas.width = result.width;
  canvas.height = result.height;
  const view = $(".photo-view");
  view.classList.remove("broken");
  img.onerror = () => view.classList.add("broken");  // decoded by the server, not by this browser: boxes alone
  img.src = photoUrl;
  drawPhotoFaces(canvas, result.faces);
  $("#photo-name").textContent = `${file.name} · ${result.width}×${result.height}`;
  const n = result.faces.length;
  $("#photo-count").textContent = `${n} face${n === 1 ? "" : "s"}`;
  $("#photo-faces tbody").replaceChildren(...result.faces.map(faceRow));
  $("#photo-no-faces").hidden = n > 0;
  $("#photo-result").hidden = false;
}

const faceEmotion = (f) => f.emotion || f.smoothed?.emotion || null;
const facePose = (f) => f.pose || f.smoothed?.pose || null;

function faceRow(f, i) {
  const emo = faceEmotion(f);
  const pose = facePose(f);
  const row = el("tr", {"data-face": String(i + 1)});
  row.append(el("td", {class: "face-no"}, String(i + 1)));
  const label = el("td", {class: "label"}, emo ? emo.label : "–");
  if (emo) label.style.color = COLOURS[emo.label] || "";
  row.append(label);
  for (const name of EMOTIONS) {
    const p = emo?.probs?.[name];
    const cell = el("td", {class: `num prob p-${name}`}, p === undefined || p === null ? "–" : `${(p * 100).toFixed(1)}%`);
    if (emo && name === emo.label) cell.classList.add("top");
    row.append(cell);
  }
  for (const angle of ["yaw", "pitch", "roll"]) {
    row.append(el("td", {class: `num ${angle}`}, pose ? pose[angle].toFixed(1) : "–"));
  }
  return row;
}

function poseAxes(pose) {
  // tiltwatch's angles -> the head's x (right to left), y (down) and facing (-z) axes in the image,
  // as rotation_from_pose in tiltwatch.vision.pose: R = Ry(-yaw) Rx(-pitch) Rz(roll)
  const rad = Math.PI / 180;
  const a = -pose.yaw * rad, b = -pose.pitch * rad, c = pose.roll * rad;
  const mul = (m, n) => m.map((row) => [0, 1, 2].map((j) => row[0] * n[0][j] + row[1] * n[1][j] + row[2] * n[2][j]));
  const ry = [[Math.cos(a), 0, Math.sin(a)], [0, 1, 0], [-Math.sin(a), 0, Math.cos(a)]];
  const rx = [[1, 0, 0], [0, Math.cos(b), -Math.sin(b)], [0, Math.sin(b), Math.cos(b)]];
  const rz = [[Math.cos(c), -Math.sin(c), 0], [Math.sin(c), Math.cos(c), 0], [0, 0, 1]];
  const r = mul(mul(ry, rx), rz);
  return [[r[0][0], r[1][0], "#ff3030"], [r[0][1], r[1][1], "#30ff30"], [-r[0][2], -r[1][2], "#3080ff"]];
}

function drawPhotoFaces(canvas, faces) {
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);  // transparent: the image shows through
  const scale = Math.max(canvas.width, canvas.height) / 1000;
  const line = Math.max(2, 3 * scale);
  const font = Math.max(12, Math.round(18 * scale));
  g.font = `${font}px system-ui, sans-serif`;
  g.lineCap = "round";
  faces.forEach((f, i) => {
    const [x, y, w, h] = f.box;
    const emo = faceEmotion(f);
    const pose = facePose(f);
    const colour = emo ? COLOURS[emo.label] || "#ffffff" : "#ffffff";
    g.lineWidth = line;
    g.strokeStyle = colour;
    g.strokeRect(x, y, w, h);
    if (pose) {
      const cx = x + w / 2, cy = y + h / 2, length = 0.45 * w;
      for (const [dx, dy, axisColour] of poseAxes(pose)) {
        g.strokeStyle = axisColour;
        g.beginPath();
        g.moveTo(cx, cy);
        g.lineTo(cx + dx * length, cy + dy * length);
        g.stroke();
      }
    }
    const text = `#${i + 1}${emo ? ` ${emo.label} ${Math.round((emo.probs?.[emo.label] ?? 0) * 100)}%` : ""}`;
    const tw = g.measureText(text).width + 8;
    const th = font + 6;
    const ty = y - th >= 0 ? y - th : y + h;  // above the box, or below it at the top edge
    g.fillStyle = colour;
    g.fillRect(x, ty, tw, th);
    g.fillStyle = "#000";
    g.fillText(text, x + 4, ty + th - 5);
  });
}

function setupPhotoPage() {
  const input = $("#photo-input");
  input.addEventListener("change", () => {
    const file = input.files[0];
    input.value = "";  // picking the same file again analyses it again
    if (file) analysePhoto(file);
  });
  const zone = $("#drop-zone");
  const over = (on) => (event) => { event.preventDefault(); zone.classList.toggle("over", on); };
  zone.addEventListener("dragenter", over(true));
  zone.addEventListener("dragover", over(true));
  zone.addEventListener("dragleave", over(false));
  zone.addEventListener("drop", (event) => {
    over(false)(event);
    const file = event.dataTransfer?.files?.[0];
    if (file) analysePhoto(file);
  });
  // a file dropped beside the zone is not opened by the browser in place of the dashboard
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (event) => { if (!zone.contains(event.target)) event.preventDefault(); });
  }
}

// --- start ---------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const candidate = $("#key-input").value.trim();
    $("#key-input").value = "";
    if (candidate) signIn(candidate);
  });
  $("#logout").addEventListener("click", () => signOut());
  window.addEventListener("hashchange", showPage);
  setupPhotoPage();
  if (key) signIn(key); else showLogin();
});

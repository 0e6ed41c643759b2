// offline serve's page: an aria2 JSON-RPC client of the daemon that serves it, over
// the WebSocket at /jsonrpc. No framework, no build step. Names come from the drive:
// they are only ever set with textContent.
"use strict";

const KEYS = ["gid", "status", "totalLength", "completedLength", "files", "dir",
  "errorMessage", "offlinePercent"];
const provider = document.body.dataset.provider;
let socket = null;
let nextId = 1;
const pending = new Map();
let token = sessionStorage.getItem("offline-token");
let refreshing = false;
let again = false;

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(scheme + "//" + location.host + "/jsonrpc");
  socket.onopen = () => { setConnection(true); refresh(); };
  socket.onclose = () => {
    setConnection(false);
    for (const [, p] of pending) p.reject(new Error("connection closed"));
    pending.clear();
    setTimeout(connect, 1000);
  };
  socket.onmessage = (event) => {
    let msg;
    try { msg = JSON.parse(event.data); } catch (e) { return; }
    if (msg.method && msg.method.startsWith("aria2.on")) { refresh(); return; }
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (msg.error) p.reject(msg.error); else p.resolve(msg.result);
  };
}

function setConnection(up) {
  const el = document.getElementById("connection");
  el.textContent = up ? "connected" : "disconnected, retrying…";
  el.classList.toggle("up", up);
}

function send(method, params) {
  return new Promise((resolve, reject) => {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      reject(new Error("not connected"));
      return;
    }
    const id = "web-" + nextId++;
    pending.set(id, { resolve, reject });
    socket.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
  });
}

// A call with the secret when one was given; asked for once on "Unauthorized" (it
// stays in this tab's sessionStorage).
async function call(method, params) {
  const withToken = (t) => (t ? ["token:" + t].concat(params) : params);
  const used = token;
  try {
    return await send(method, withToken(used));
  } catch (e) {
    if (!e || e.message !== "Unauthorized") throw e;
    // Another call may have asked meanwhile: use its answer, else ask (once).
    if (token === used) {
      const given = prompt("The daemon's RPC secret:");
      if (!given) throw e;
      token = given;
      sessionStorage.setItem("offline-token", token);
    }
    return send(method, withToken(token));
  }
}

function nameOf(task) {
  const file = (task.files || [])[0];
  const path = file && file.path ? file.path : "";
  if (path) {
    const dir = task.dir || "";
    const rest = path.startsWith(dir) ? path.slice(dir.length) : path;
    return rest.replace(/^\/+/, "") || path;
  }
  const uri = file && file.uris && file.uris[0] ? file.uris[0].uri : "";
  return uri || task.gid;
}

function percentOf(task) {
  if (task.status === "complete") return 100;
  const total = Number(task.totalLength || 0);
  const done = Number(task.completedLength || 0);
  if (total > 0) return Math.min(100, Math.floor((done * 100) / total));
  return Math.min(100, Number(task.offlinePercent || 0));
}

async function refresh() {
  if (refreshing) { again = true; return; }
  refreshing = true;
  try {
    const [active, waiting, stopped] = await Promise.all([
      call("aria2.tellActive", [KEYS]),
      call("aria2.tellWaiting", [0, 1000, KEYS]),
      call("aria2.tellStopped", [0, 1000, KEYS]),
    ]);
    render(active.concat(waiting, stopped));
  } catch (e) {
    // Shown by the connection line; the next tick tries again.
  } finally {
    refreshing = false;
    if (again) { again = false; refresh(); }
  }
}

function cell(row, className, text) {
  const td = document.createElement("td");
  if (className) td.className = className;
  if (text !== undefined) td.textContent = text;
  row.appendChild(td);
  return td;
}

function render(tasks) {
  const body = document.getElementById("task-rows");
  const rows = [];
  for (const task of tasks) {
    const pct = percentOf(task);
    const row = document.createElement("tr");
    row.dataset.gid = task.gid;
    row.dataset.status = task.status;
    cell(row, "name", nameOf(task));
    cell(row, "provider", provider);
    const status = cell(row, "status " + task.status, task.status);
    if (task.errorMessage) status.title = task.errorMessage;
    const progress = document.createElement("div");
    progress.className = "progress";
    progress.dataset.percent = String(pct);
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = pct + "%";
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = pct + " %";
    progress.append(bar, label);
    cell(row, "").appendChild(progress);
    const remove = document.createElement("button");
    remove.className = "remove";
    remove.textContent = "Remove";
    const stopped = !["active", "waiting", "paused"].includes(task.status);
    remove.onclick = () => removeTask(task.gid, stopped);
    cell(row, "").appendChild(remove);
    rows.push(row);
  }
  body.replaceChildren(...rows);
  document.getElementById("empty").hidden = rows.length > 0;
}

async function removeTask(gid, stopped) {
  try {
    if (stopped) {
      await call("aria2.removeDownloadResult", [gid]);
    } else {
      await call("aria2.remove", [gid]);
    }
  } catch (e) {
    showMessage(e);
  }
  refresh();
}

function showMessage(e) {
  document.getElementById("message").textContent = e ? (e.message || String(e)) : "";
}

document.getElementById("add-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("add-url");
  const link = input.value.trim();
  if (!link) return;
  try {
    await call("aria2.addUri", [[link]]);
    input.value = "";
    showMessage(null);
  } catch (e) {
    showMessage(e);
  }
  refresh();
});

connect();
setInterval(refresh, 1000);

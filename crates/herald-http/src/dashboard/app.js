// Herald dashboard: follows the live event stream, draws the rate chart, refreshes the
// subscription and account tables, and wires the buttons to the admin API.
// Every string from the server is set with textContent, never parsed as HTML.
"use strict";

(function () {
  const body = document.body;
  const TYPES = (body.dataset.types || "").split(",").filter(Boolean);
  const HEAD = Number(body.dataset.head || 0);
  const BACKFILL = Number(body.dataset.backfill || 0);
  const KEEP_ROWS = 500; // events kept for the table
  const WINDOW_MS = 10 * 60 * 1000; // the chart's span
  const BUCKET_MS = 30 * 1000; // one bar
  const REFRESH_MS = 5000; // subscription and account tables
  const PALETTE = ["#2457c5", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#1098ad",
    "#e67700", "#5c940d", "#364fc7", "#a61e4d", "#495057", "#0b7285"];

  const $ = (id) => document.getElementById(id);
  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  };

  // ---- notices ------------------------------------------------------------------------------
  let noticeTimer = null;
  function notice(text, isError) {
    const n = $("notice");
    n.textContent = text;
    n.classList.toggle("error", !!isError);
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { n.textContent = ""; }, 8000);
  }

  // ---- events -------------------------------------------------------------------------------
  const events = []; // newest last: {id, type, user, mailbox, time, ms}
  const times = []; // {type, ms} within the chart window
  let paused = false;
  let missed = 0;

  function imapUrlParts(url) {
    // imap://user@host/Mailbox;UIDVALIDITY=1/;UID=2 — the user and the mailbox name.
    if (typeof url !== "string") return null;
    try {
      const u = new URL(url);
      let path = u.pathname.replace(/^\//, "").split(";")[0].replace(/\/$/, "");
      return {
        user: u.username ? decodeURIComponent(u.username) : null,
        mailbox: path ? decodeURIComponent(path) : null,
      };
    } catch (e) {
      return null;
    }
  }

  function summarise(id, json) {
    let e;
    try {
      e = JSON.parse(json);
    } catch (err) {
      return null;
    }
    const url = imapUrlParts(e.uri) || imapUrlParts(e.mailboxID) || {};
    const ms = Date.parse(e.timestamp);
    return {
      id: id,
      type: String(e.event || "?"),
      user: e.user || url.user || "",
      mailbox: url.mailbox || "",
      ms: isNaN(ms) ? Date.now() : ms,
    };
  }

  function timeText(ms) {
    const d = new Date(ms);
    const p = (n) => String(n).padStart(2, "0");
    return p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }

  function matches(ev) {
    const type = $("filter-type").value;
    const user = $("filter-user").value.trim().toLowerCase();
    return (!type || ev.type === type) && (!user || ev.user.toLowerCase().includes(user));
  }

  function eventRow(ev) {
    const tr = el("tr");
    tr.dataset.type = ev.type;
    tr.append(el("td", ev.id), el("td", timeText(ev.ms)), el("td", ev.type),
      el("td", ev.user), el("td", ev.mailbox));
    return tr;
  }

  function renderEvents() {
    const tbody = $("event-table").tBodies[0];
    const rows = [];
    for (let i = events.length - 1; i >= 0 && rows.length < 200; i--) {
      if (matches(events[i])) rows.push(eventRow(events[i]));
    }
    tbody.replaceChildren(...rows);
    $("stream-status").textContent = paused
      ? "paused" + (missed ? " — " + missed + " new event" + (missed === 1 ? "" : "s") : "")
      : "";
  }

  function addType(type) {
    if (TYPES.includes(type)) return;
    TYPES.push(type);
    const select = $("filter-type");
    select.append(new Option(type, type));
  }

  function onEvent(message) {
    const ev = summarise(message.lastEventId, message.data);
    if (!ev) return;
    addType(ev.type);
    events.push(ev);
    if (events.length > KEEP_ROWS) events.splice(0, events.length - KEEP_ROWS);
    times.push({ type: ev.type, ms: ev.ms });
    if (paused) {
      missed++;
      $("stream-status").textContent = "paused — " + missed + " new event" + (missed === 1 ? "" : "s");
    } else {
      scheduleRender();
    }
    scheduleChart();
  }

  let renderQueued = false;
  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => { renderQueued = false; renderEvents(); });
  }

  function connect() {
    const from = Math.max(0, HEAD - BACKFILL);
    // The browser sends the credentials it logged in with; on a reconnect it sends the last
    // id it saw as Last-Event-ID, which the server prefers to `from`.
    const source = new EventSource("/events/stream?from=" + from);
    const status = $("connection");
    source.onopen = () => { status.textContent = "live"; status.className = "connection live"; };
    source.onerror = () => { status.textContent = "reconnecting…"; status.className = "connection down"; };
    // The stream names each message by its event type, so each type needs its listener.
    const listen = (type) => source.addEventListener(type, onEvent);
    TYPES.forEach(listen);
    source.onmessage = onEvent; // a message without a type
  }

  // ---- chart --------------------------------------------------------------------------------
  let chartQueued = false;
  function scheduleChart() {
    if (chartQueued) return;
    chartQueued = true;
    setTimeout(() => { chartQueued = false; drawChart(); }, 250);
  }

  function colour(type) {
    return PALETTE[Math.max(0, TYPES.indexOf(type)) % PALETTE.length];
  }

  function drawChart() {
    const canvas = $("rate-chart");
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    const now = Date.now();
    const start = now - WINDOW_MS;
    while (times.length && times[0].ms < start) times.shift();
    const n = WINDOW_MS / BUCKET_MS;
    const buckets = Array.from({ length: n }, () => new Map());
    const seen = new Map();
    for (const t of times) {
      const i = Math.min(n - 1, Math.floor((t.ms - start) / BUCKET_MS));
      if (i < 0) continue;
      buckets[i].set(t.type, (buckets[i].get(t.type) || 0) + 1);
      seen.set(t.type, (seen.get(t.type) || 0) + 1);
    }
    // Per minute: a bucket's count scaled to 60 s.
    const scale = 60000 / BUCKET_MS;
    let max = 1;
    for (const b of buckets) {
      let sum = 0;
      for (const c of b.values()) sum += c * scale;
      max = Math.max(max, sum);
    }
    const w = canvas.width, h = canvas.height;
    const left = 44, bottom = 22, top = 8;
    const plotH = h - bottom - top, plotW = w - left - 8;
    ctx.clearRect(0, 0, w, h);
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#5c6577";
    ctx.strokeStyle = "#dde1e8";
    ctx.lineWidth = 1;
    for (let k = 0; k <= 4; k++) {
      const y = top + plotH - (plotH * k) / 4;
      ctx.beginPath();
      ctx.moveTo(left, y + 0.5);
      ctx.lineTo(w - 8, y + 0.5);
      ctx.stroke();
      ctx.textAlign = "right";
      ctx.fillText(String(Math.round((max * k) / 4)), left - 6, y + 4);
    }
    ctx.textAlign = "center";
    for (let m = 10; m >= 0; m -= 2) {
      const x = left + plotW * (1 - (m * 60000) / WINDOW_MS);
      ctx.fillText(m === 0 ? "now" : "-" + m + " min", x, h - 6);
    }
    const bw = plotW / n;
    buckets.forEach((b, i) => {
      let y = top + plotH;
      for (const type of TYPES) {
        const c = b.get(type);
        if (!c) continue;
        const bh = (c * scale * plotH) / max;
        ctx.fillStyle = colour(type);
        ctx.fillRect(left + i * bw + 1, y - bh, Math.max(1, bw - 2), bh);
        y -= bh;
      }
    });
    const legend = $("rate-legend");
    const items = [];
    for (const type of TYPES) {
      if (!seen.has(type)) continue;
      const li = el("li");
      const swatch = el("span", null, "swatch");
      swatch.style.backgroundColor = colour(type);
      li.append(swatch, el("span", type + " (" + seen.get(type) + ")"));
      items.push(li);
    }
    if (!items.length) items.push(el("li", "no events in the last 10 minutes", "empty"));
    legend.replaceChildren(...items);
  }

  // ---- subscriptions and accounts -------------------------------------------------------------
  function button(action, label) {
    const b = el("button", label);
    b.type = "button";
    b.dataset.action = action;
    return b;
  }

  function subscriptionRow(s) {
    const tr = el("tr");
    tr.dataset.name = s.name;
    const state = el("td", s.state, "state state-" + s.state);
    const replayFrom = el("input");
    replayFrom.type = "number";
    replayFrom.min = "1";
    replayFrom.placeholder = "event id";
    replayFrom.setAttribute("aria-label", "replay from event id");
    const actions = el("td", null, "actions");
    actions.append(button("pause", "Pause"), button("resume", "Resume"), replayFrom,
      button("replay", "Replay from"), button("replay-parked", "Replay parked"),
      button("test", "Send test"));
    tr.append(el("td", s.name, "name"), el("td", s.sink), state, el("td", s.cursor, "num"),
      el("td", s.lag_events, "num"), el("td", Number(s.lag_seconds).toFixed(1), "num"),
      el("td", s.parked, "num"), el("td", s.delivered, "num"),
      el("td", s.last_error || "", "error"), actions);
    return tr;
  }

  function humanBytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = n, u = 0;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
    return u === 0 ? n + " B" : v.toFixed(1) + " " + units[u];
  }

  function usage(td, used, limit, text, limitText) {
    if (limit === null || limit === undefined) {
      td.append(el("span", text + " (no limit)"));
      return;
    }
    const m = el("meter");
    m.min = 0;
    m.max = limit;
    m.low = Math.floor((limit * 7) / 10);
    m.high = Math.floor((limit * 9) / 10);
    m.optimum = 0;
    m.value = Math.min(used, limit);
    td.append(m, document.createTextNode(" "), el("span", text + " of " + limitText));
  }

  function accountRow(a) {
    const tr = el("tr");
    tr.dataset.name = a.name;
    const name = el("td", a.name, "name");
    if (a.admin) name.append(document.createTextNode(" "), el("span", "admin", "badge"));
    if (a.disabled !== null) {
      const badge = el("span", "disabled", "badge badge-disabled");
      if (a.disabled) badge.title = a.disabled;
      name.append(document.createTextNode(" "), badge);
    }
    const storage = el("td", null, "quota");
    const kb = a.storage_kb;
    usage(storage, Math.ceil(a.used_bytes / 1024), kb, humanBytes(a.used_bytes),
      kb === null ? "" : humanBytes(kb * 1024));
    const messages = el("td", null, "quota");
    usage(messages, a.used_messages, a.max_messages, a.used_messages + " messages",
      String(a.max_messages));
    tr.append(name, storage, messages);
    return tr;
  }

  async function refresh() {
    let summary;
    try {
      const r = await fetch("/dashboard/summary", { cache: "no-store" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      summary = await r.json();
    } catch (e) {
      notice("cannot refresh: " + e.message, true);
      return;
    }
    // Keep what the operator typed in a replay field across refreshes.
    const typed = new Map();
    for (const tr of $("subscription-table").tBodies[0].rows) {
      const input = tr.querySelector("input");
      if (input && input.value) typed.set(tr.dataset.name, input.value);
    }
    const rows = summary.subscriptions.map((s) => {
      const tr = subscriptionRow(s);
      if (typed.has(s.name)) tr.querySelector("input").value = typed.get(s.name);
      return tr;
    });
    $("subscription-table").tBodies[0].replaceChildren(...rows);
    $("no-subscriptions").hidden = rows.length > 0;
    $("account-table").tBodies[0].replaceChildren(...summary.accounts.map(accountRow));
  }

  async function act(action, name, tr) {
    const base = "/subscriptions/" + encodeURIComponent(name);
    let path;
    switch (action) {
      case "pause": path = base + "/pause"; break;
      case "resume": path = base + "/resume"; break;
      case "replay-parked": path = base + "/parked/replay"; break;
      case "test": path = base + "/test"; break;
      case "replay": {
        const from = tr.querySelector("input").value.trim();
        if (!/^[0-9]+$/.test(from)) {
          notice("Replay needs the id of the first event to deliver again.", true);
          return;
        }
        path = base + "/replay?from=" + from;
        break;
      }
      default: return;
    }
    try {
      const r = await fetch(path, { method: "POST" });
      const answer = await r.json().catch(() => ({}));
      if (!r.ok) {
        notice(name + ": " + (answer.error || "HTTP " + r.status), true);
      } else if (action === "replay-parked") {
        notice(name + ": " + answer.delivered + " parked event(s) delivered");
      } else if (action === "test") {
        notice(name + ": test event delivered");
      } else {
        notice(name + ": " + (answer.state || "done"));
      }
    } catch (e) {
      notice(name + ": " + e.message, true);
    }
    await refresh();
  }

  // ---- wiring -------------------------------------------------------------------------------
  function init() {
    const select = $("filter-type");
    TYPES.forEach((t) => select.append(new Option(t, t)));
    select.addEventListener("change", renderEvents);
    $("filter-user").addEventListener("input", renderEvents);
    const pauseButton = $("pause-stream");
    pauseButton.setAttribute("aria-pressed", "false");
    pauseButton.addEventListener("click", () => {
      paused = !paused;
      missed = 0;
      pauseButton.textContent = paused ? "Resume" : "Pause";
      pauseButton.setAttribute("aria-pressed", String(paused));
      renderEvents();
    });
    $("subscription-table").addEventListener("click", (e) => {
      const b = e.target.closest("button[data-action]");
      if (!b) return;
      const tr = b.closest("tr");
      b.disabled = true;
      act(b.dataset.action, tr.dataset.name, tr).finally(() => { b.disabled = false; });
    });
    connect();
    drawChart();
    setInterval(drawChart, BUCKET_MS / 3);
    setInterval(refresh, REFRESH_MS);
  }

  init();
})();

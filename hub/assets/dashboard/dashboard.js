// The centre's big screen. Plain JavaScript, nothing fetched from elsewhere.
//
// The page shows nothing of the data until it has a viewer's token: from
// `#token=…` in the address (a fragment never reaches a server's log; it is
// read, kept in this tab's sessionStorage and taken out of the address) or
// from the form. Every data request sends it as `Authorization: Bearer`; a
// 401 brings the form back.
//
// The live list reads /api/v1/live with fetch() and parses the server-sent
// events itself, rather than with EventSource: EventSource cannot send an
// Authorization header, and a token in the URL would end up in access logs
// and the browser's history. Reading the stream ourselves also lets the
// page send Last-Event-ID when it reconnects, so it gets what it missed.
"use strict";

(function () {
  const KEY = "hub.dashboard.token";
  const REFRESH_MS = 30000;
  const LIVE_MAX = 50;
  const CHANNELS = { hotline: "12345热线", petition: "信访", court_mediation: "法院诉前调解", terminal: "网格员终端" };
  const CAUSES = {
    created: "新受理", updated: "更新", merged: "合并", reopened: "重新办理", dispatched: "已派单",
    accepted: "已受理", urged: "催办", escalated: "升级", resolved: "已办结", closed: "已结案",
    withdrawn: "已撤回", rated: "评价", unmerged: "拆分",
  };
  const COUNTIES = ["220402", "220403", "220421", "220422"];

  const $ = (id) => document.getElementById(id);
  let token = null;
  let liveAbort = null;
  let lastId = null;
  let refreshTimer = null;
  let refreshSoon = null;
  let mapShapes = null;
  let loads = 0;

  // ---- token ------------------------------------------------------------

  function takeTokenFromAddress() {
    const hash = window.location.hash.replace(/^#/, "");
    if (!hash) return false;
    const params = new URLSearchParams(hash);
    const t = params.get("token");
    if (!t) return false;
    {
      sessionStorage.setItem(KEY, t.trim());
      params.delete("token");
      const rest = params.toString();
      history.replaceState(null, "", window.location.pathname + window.location.search + (rest ? "#" + rest : ""));
    }
    return true;
  }

  function showLogin(message) {
    token = null;
    sessionStorage.removeItem(KEY);
    stopLive();
    clearInterval(refreshTimer);
    $("screen").hidden = true;
    $("logout").hidden = true;
    $("login").hidden = false;
    $("login-message").textContent = message || "";
    setLiveState("idle", "未连接");
    $("token").focus();
  }

  function start() {
    token = sessionStorage.getItem(KEY);
    if (!token) {
      showLogin("");
      return;
    }
    $("login").hidden = true;
    $("screen").hidden = false;
    $("logout").hidden = false;
    refresh();
    clearInterval(refreshTimer);
    refreshTimer = setInterval(refresh, REFRESH_MS);
    startLive();
  }

  class Unauthorized extends Error {}

  async function api(path) {
    const r = await fetch(path, { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
    if (r.status === 401) throw new Unauthorized();
    if (!r.ok) throw new Error(path + " 返回 " + r.status);
    return r.json();
  }

  // ---- figures ----------------------------------------------------------

  const fmtInt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("zh-CN"));
  const fmtRate = (r) => (r === null || r === undefined ? "–" : (r * 100).toFixed(1) + "%");

  function setValue(id, value, text) {
    const el = $(id);
    el.dataset.value = value === null || value === undefined ? "" : String(value);
    el.textContent = text;
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("data-")) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children) e.append(c);
    return e;
  }

  function span(cls, text) {
    return el("span", { class: cls, title: text }, text);
  }

  function sumOf(rows) {
    return rows.reduce((a, r) => a + r.received, 0);
  }

  function bars(listId, keys, names, today, month, attr) {
    const list = $(listId);
    const max = Math.max(1, ...keys.map((k) => month[k] || 0), ...keys.map((k) => today[k] || 0));
    list.replaceChildren(
      ...keys.map((k) => {
        const t = today[k] || 0;
        const m = month[k] || 0;
        const track = el("div", { class: "track" },
          el("div", { class: "bar-month", style: "" }),
          el("div", { class: "bar-today" }));
        track.children[0].style.width = (100 * m) / max + "%";
        track.children[1].style.width = (100 * t) / max + "%";
        return el("li", { [attr]: k, "data-today": String(t), "data-month": String(m) },
          span("name", names[k] || k), track,
          el("span", { class: "num" }, el("span", { class: "t" }, fmtInt(t)), " / ", fmtInt(m)));
      }),
    );
  }

  function byKey(rows) {
    const out = {};
    const names = {};
    for (const r of rows) {
      out[r.key] = r.received;
      if (r.name) names[r.key] = r.name;
    }
    return [out, names];
  }

  function renderToday(t) {
    setValue("today-total", sumOf(t.today_by_channel), fmtInt(sumOf(t.today_by_channel)));
    setValue("month-total", t.month_total.received, fmtInt(t.month_total.received));
    setValue("month-closed", t.month_total.closed, fmtInt(t.month_total.closed));
    setValue("month-overdue", t.month_total.overdue, fmtInt(t.month_total.overdue));
    setValue("month-reopened", t.month_total.reopened, fmtInt(t.month_total.reopened));
    setValue("rate-closure", t.month_total.closureRate, fmtRate(t.month_total.closureRate));
    setValue("rate-ontime", t.month_total.onTimeRate, fmtRate(t.month_total.onTimeRate));
    setValue("rate-satisfaction", t.month_total.satisfactionRate, fmtRate(t.month_total.satisfactionRate));
    $("map-month").textContent = t.month;
    $("scope").dataset.region = t.region || "";
    $("scope").textContent = t.region ? "范围 " + t.region : "全市";

    const [todayCh] = byKey(t.today_by_channel);
    const [monthCh] = byKey(t.month_by_channel);
    const channels = Object.keys(CHANNELS).concat(
      Object.keys(Object.assign({}, todayCh, monthCh)).filter((k) => !(k in CHANNELS)).sort());
    bars("by-channel", channels, CHANNELS, todayCh, monthCh, "data-channel");

    const [todayCo, n1] = byKey(t.today_by_county);
    const [monthCo, n2] = byKey(t.month_by_county);
    const names = Object.assign({ 220402: "龙山区", 220403: "西安区", 220421: "东丰县", 220422: "东辽县" }, n1, n2);
    const shown = t.region ? COUNTIES.filter((c) => c.startsWith(t.region.slice(0, 6))) : COUNTIES;
    const counties = shown.concat(
      Object.keys(Object.assign({}, todayCo, monthCo)).filter((k) => !shown.includes(k)).sort());
    bars("by-county", counties, names, todayCo, monthCo, "data-county");
    drawMapCounts(monthCo);
  }

  function renderDepartments(d) {
    const list = $("departments");
    const top = d.ranking.slice(0, 8);
    list.replaceChildren(
      ...top.map((r) =>
        el("li", { "data-department": r.department, "data-rank": String(r.rank), "data-value": String(r.figures.onTimeRate) },
          span("name", r.department || "未派单"),
          el("span", { class: "score" }, fmtRate(r.figures.onTimeRate) + " · " + fmtInt(r.figures.closed) + "件"))),
    );
    list.dataset.count = String(d.ranking.length);
    $("departments-empty").hidden = top.length > 0;
  }

  function where(item) {
    return item.regionName || item.countyName || item.region || "—";
  }

  function shortTime(iso) {
    return iso ? iso.slice(5, 16).replace("T", " ") : "";
  }

  function renderDeadlines(d) {
    const row = (item, whenText) =>
      el("li", { "data-ticket": item.ticketId, "data-county": item.county },
        span("where", where(item)), span("what", item.categoryName || item.category || "—"),
        span("dept", item.department || "未派单"), span("when", whenText));
    $("overdue").replaceChildren(...d.overdue.slice(0, 8).map((i) => row(i, "应于 " + shortTime(i.dueAt))));
    $("due-soon").replaceChildren(...d.dueSoon.slice(0, 6).map((i) => row(i, "限 " + shortTime(i.dueAt))));
    setValue("overdue-count", d.overdue.length, fmtInt(d.overdue.length));
    setValue("due-soon-count", d.dueSoon.length, fmtInt(d.dueSoon.length));
    $("deadlines-empty").hidden = d.overdue.length + d.dueSoon.length > 0;
  }

  function renderCourts(c) {
    $("courts-pending").replaceChildren(
      ...c.pending.slice(0, 6).map((p) =>
        el("li", { "data-ticket": p.ticketId, "data-case": p.caseNo },
          span("case", p.caseNo), span("where", where(p)),
          span("when", (p.alarmedAt ? "已告警 " : "调解成功 ") + shortTime(p.agreedAt)))),
    );
    setValue("courts-count", c.pending.length, fmtInt(c.pending.length));
    $("courts-empty").hidden = c.pending.length > 0;
  }

  function renderAlerts(a) {
    $("alerts").replaceChildren(
      ...a.alerts.map((x) =>
        el("li", { "data-area": x.area, "data-category": x.category, "data-day": x.day, "data-count": String(x.count) },
          span("where", x.areaName || x.area), span("what", x.categoryName || x.category),
          span("count", x.count + "件（基线 " + Number(x.baselineMean).toFixed(1) + "）"),
          span("method", x.method))),
    );
    setValue("alerts-count", a.alerts.length, fmtInt(a.alerts.length));
    $("alerts-empty").hidden = a.alerts.length > 0;
  }

  async function refresh() {
    if (!token) return;
    try {
      const [today, departments, deadlines, courts, alerts] = await Promise.all([
        api("/api/v1/stats/today"),
        api("/api/v1/stats/departments"),
        api("/api/v1/deadlines"),
        api("/api/v1/courts/pending"),
        api("/api/v1/alerts"),
      ]);
      renderToday(today);
      renderDepartments(departments);
      renderDeadlines(deadlines);
      renderCourts(courts);
      renderAlerts(alerts);
      loads += 1;
      document.body.dataset.loads = String(loads);
      $("updated").dataset.value = new Date().toISOString();
      $("updated").textContent = "数据更新于 " + new Date().toLocaleTimeString("zh-CN", { hour12: false, timeZone: "Asia/Shanghai" });
      $("error").textContent = "";
    } catch (e) {
      if (e instanceof Unauthorized) showLogin("令牌无效或已过期，请重新输入");
      else $("error").textContent = "数据暂时无法读取，稍后自动重试";
    }
  }

  // A matter arrived: the figures follow shortly, in one request for a burst.
  function refreshAfterArrival() {
    if (refreshSoon) return;
    refreshSoon = setTimeout(() => {
      refreshSoon = null;
      refresh();
    }, 1500);
  }

  // ---- map --------------------------------------------------------------

  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    return e;
  }

  async function loadMap() {
    const r = await fetch("/dashboard/liaoyuan-map.json");
    mapShapes = await r.json();
    const map = $("map");
    map.replaceChildren();
    for (const a of mapShapes.areas) {
      const g = svg("g", { "data-county": a.code });
      g.append(svg("polygon", { class: "area", points: a.polygon.map((p) => p.join(",")).join(" "), fill: "#12335a", "data-county": a.code }));
      map.append(g);
    }
    for (const a of mapShapes.areas) {
      const [x, y] = a.label;
      const bubble = svg("circle", { class: "bubble", cx: x, cy: y, r: 0, "data-county": a.code, "data-month": "0" });
      const name = svg("text", { class: "area-name", x: x, y: y - 14 });
      name.textContent = a.name;
      const count = svg("text", { class: "area-count", x: x, y: y + 36, "data-county": a.code, "data-month": "0" });
      count.textContent = "0";
      map.append(bubble, name, count);
    }
  }

  let lastMonthByCounty = {};
  function drawMapCounts(monthByCounty) {
    lastMonthByCounty = monthByCounty;
    if (!mapShapes) return;
    const max = Math.max(1, ...Object.values(monthByCounty));
    for (const a of mapShapes.areas) {
      const n = monthByCounty[a.code] || 0;
      const share = n / max;
      const poly = $("map").querySelector('polygon[data-county="' + a.code + '"]');
      // Shading per county: darker blue for few, brighter for many.
      poly.setAttribute("fill", "rgb(" + Math.round(18 + 30 * share) + "," + Math.round(51 + 70 * share) + "," + Math.round(90 + 110 * share) + ")");
      poly.dataset.month = String(n);
      const bubble = $("map").querySelector('circle[data-county="' + a.code + '"]');
      bubble.setAttribute("r", n ? String(14 + 46 * Math.sqrt(share)) : "0");
      bubble.dataset.month = String(n);
      const count = $("map").querySelector('text.area-count[data-county="' + a.code + '"]');
      count.textContent = fmtInt(n);
      count.dataset.month = String(n);
    }
  }

  function flashCounty(county) {
    const bubble = mapShapes && $("map").querySelector('circle[data-county="' + county + '"]');
    if (!bubble) return;
    bubble.classList.add("flash");
    setTimeout(() => bubble.classList.remove("flash"), 1200);
  }

  // ---- live -------------------------------------------------------------

  function setLiveState(state, text) {
    const s = $("live-state");
    s.dataset.state = state;
    s.textContent = text;
  }

  function stopLive() {
    if (liveAbort) liveAbort.abort();
    liveAbort = null;
  }

  function addLive(ev) {
    const list = $("live");
    if (list.querySelector('li[data-id="' + ev.id + '"]')) return;
    const li = el("li", { class: "new", "data-id": String(ev.id), "data-ticket": ev.ticketId, "data-county": ev.county, "data-cause": ev.cause },
      span("time", (ev.at || "").slice(11, 19)),
      span("where", ev.regionName || ev.countyName || ev.region || "—"),
      span("channel", ev.channelName || CHANNELS[ev.channel] || ev.channel || "—"),
      span("what", ev.categoryName || ev.category || "—"),
      span("cause", CAUSES[ev.cause] || ev.cause));
    list.prepend(li);
    while (list.children.length > LIVE_MAX) list.lastElementChild.remove();
    $("live-empty").hidden = true;
    list.dataset.count = String(list.children.length);
    flashCounty(ev.county);
  }

  function onEvent(type, id, data) {
    if (id !== null && id !== "" && /^\d+$/.test(id)) {
      const n = Number(id);
      if (lastId === null || n > lastId) lastId = n;
    }
    if (type === "revision") {
      try {
        addLive(JSON.parse(data));
      } catch (e) {
        return;
      }
      refreshAfterArrival();
    } else if (type === "resync") {
      refresh();
    } else if (type === "hello") {
      setLiveState("open", "实时连接正常");
    }
  }

  // Server-sent events, parsed as the specification says: fields up to a
  // blank line, `:` lines are comments (the keep-alive).
  function parser() {
    let buffer = "";
    let type = "", data = [], id = null;
    return (chunk) => {
      buffer += chunk;
      let nl;
      while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(buffer[nl] === "\r" && buffer[nl + 1] === "\n" ? nl + 2 : nl + 1);
        if (line === "") {
          if (data.length || type) onEvent(type || "message", id, data.join("\n"));
          type = ""; data = []; id = null;
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") type = value;
        else if (field === "data") data.push(value);
        else if (field === "id") id = value;
      }
    };
  }

  async function startLive() {
    stopLive();
    const abort = new AbortController();
    liveAbort = abort;
    while (liveAbort === abort && token) {
      try {
        const headers = { Authorization: "Bearer " + token, Accept: "text/event-stream" };
        if (lastId !== null) headers["Last-Event-ID"] = String(lastId);
        const r = await fetch("/api/v1/live", { headers, signal: abort.signal, cache: "no-store" });
        if (r.status === 401) {
          showLogin("令牌无效或已过期，请重新输入");
          return;
        }
        if (!r.ok || !r.body) throw new Error("live " + r.status);
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        const feed = parser();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          feed(value);
        }
      } catch (e) {
        if (abort.signal.aborted) return;
      }
      if (liveAbort !== abort) return;
      setLiveState("error", "实时连接中断，正在重连…");
      await new Promise((res) => setTimeout(res, 2000));
    }
  }

  // ---- page -------------------------------------------------------------

  function clock() {
    $("clock").textContent = new Date().toLocaleString("zh-CN", { hour12: false, timeZone: "Asia/Shanghai" });
  }

  document.addEventListener("DOMContentLoaded", () => {
    takeTokenFromAddress();
    clock();
    setInterval(clock, 1000);
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const t = $("token").value.trim();
      if (!t) {
        $("login-message").textContent = "请输入令牌";
        return;
      }
      sessionStorage.setItem(KEY, t);
      $("token").value = "";
      start();
    });
    $("logout").addEventListener("click", () => showLogin(""));
    // A link with another token, opened in this tab.
    window.addEventListener("hashchange", () => {
      if (takeTokenFromAddress()) start();
    });
    loadMap()
      .then(() => drawMapCounts(lastMonthByCounty))
      .catch(() => { $("error").textContent = "示意图无法加载"; });
    start();
  });
})();

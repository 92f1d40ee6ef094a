/* Small helpers shared by the live pages: adaptive polling, safe DOM building, formatting.
   No framework and no bundler: each page has one script that uses window.VL. */
(function () {
  "use strict";

  /* Poll `url` and hand each JSON answer to `onData`. Polls every `interval` ms while the tab
     is visible, every `hiddenInterval` ms when it is not, and stops when `until(data)` is true.
     A failed request shows nothing alarming by itself: `onError` decides (VL.api's Error); a session
     that ended reloads the page. VL.api comes from api.js, loaded after this file. */
  function poll(url, onData, opts) {
    opts = Object.assign({ interval: 1000, hiddenInterval: 10000, until: null, onError: null }, opts);
    let timer = null;
    let stopped = false;
    async function tick() {
      try {
        const data = await VL.api(url, { reloadWhenLoggedOut: true });
        onData(data);
        if (opts.until && opts.until(data)) { stopped = true; return; }
      } catch (err) {
        if (opts.onError) opts.onError(err);
      }
      schedule();
    }
    function schedule() {
      if (stopped) return;
      clearTimeout(timer);
      timer = setTimeout(tick, document.hidden ? opts.hiddenInterval : opts.interval);
    }
    document.addEventListener("visibilitychange", function () { if (!document.hidden && !stopped) { clearTimeout(timer); tick(); } });
    tick();
    return { stop: function () { stopped = true; clearTimeout(timer); } };
  }

  /* el("td", {class: "x"}, "text", otherNode): text always goes through textContent. */
  function el(tag, attrs) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(function ([key, value]) {
      if (value === null || value === undefined || value === false) return;
      if (key === "class") node.className = value;
      else if (key === "style") node.style.cssText = value;
      else node.setAttribute(key, value === true ? "" : value);
    });
    for (let i = 2; i < arguments.length; i++) {
      const child = arguments[i];
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function badge(status) { return el("span", { class: "badge badge-" + status }, status); }

  function progressBar(fraction, big) {
    const pct = Math.round(Math.max(0, Math.min(1, fraction || 0)) * 100);
    return el("div", { class: "progress" + (big ? " big" : ""), role: "progressbar", "aria-valuenow": pct, "aria-valuemin": 0, "aria-valuemax": 100 },
      el("div", { class: "bar", style: "width:" + pct + "%" }));
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    seconds = Math.round(seconds);
    if (seconds < 60) return seconds + " s";
    const m = Math.floor(seconds / 60), s = seconds % 60;
    if (m < 60) return m + " min " + s + " s";
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  }

  function bytes(n) {
    if (!n && n !== 0) return "—";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }

  /* 0.8734 -> "87.3%" (`digits` after the point, 1 unless given); "—" for what is not a number. */
  function percent(x, digits) {
    return typeof x === "number" && Number.isFinite(x) ? (x * 100).toFixed(digits === undefined ? 1 : digits) + "%" : "—";
  }

  /* What the server drew, in the reader's own terms: <time datetime> in their time zone and locale,
     [data-bytes] (unless 0) in KiB/MiB, [data-fraction] as a percentage. Pages call it on load. */
  function localize(root) {
    const scope = root || document;
    scope.querySelectorAll("time[datetime]").forEach(node => {
      const when = new Date(node.getAttribute("datetime"));
      if (!isNaN(when)) node.textContent = when.toLocaleString();
    });
    scope.querySelectorAll("[data-bytes]").forEach(node => {
      const n = Number(node.dataset.bytes);
      if (n) node.textContent = bytes(n);
    });
    scope.querySelectorAll("[data-fraction]").forEach(node => { node.textContent = percent(Number(node.dataset.fraction)); });
  }

  function ago(iso) {
    if (!iso) return "—";
    const seconds = (Date.now() - new Date(iso).getTime()) / 1000;
    if (seconds < 5) return "just now";
    if (seconds < 3600) return duration(seconds) + " ago";
    return new Date(iso).toLocaleString();
  }

  function json(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function number(x) { return (x === null || x === undefined) ? "—" : Number(x).toLocaleString(); }

  /* "(None, 24, 24, 6)" as model.summary() prints an output shape. */
  function shape(s) {
    if (Array.isArray(s)) {
      if (s.length && Array.isArray(s[0])) return s.map(shape).join(", ");
      return "(" + s.map(x => (x === null ? "None" : x)).join(", ") + (s.length === 1 ? "," : "") + ")";
    }
    return s === null || s === undefined ? "—" : String(s);
  }

  /* The layer table of a model summary ({layers, total_params, ...}), used by the job and zoo pages. */
  function summaryTable(summary) {
    return el("div", { class: "table-scroll" }, el("table", { class: "table layers-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Layer"), el("th", {}, "Type"), el("th", {}, "Output shape"), el("th", { class: "num" }, "Params"))),
      el("tbody", {}, ...(summary.layers || []).map(l => el("tr", {},
        el("td", {}, el("code", {}, l.name)), el("td", {}, l.type), el("td", { class: "shape" }, shape(l.output_shape)),
        el("td", { class: "num" }, number(l.params))))),
      el("tfoot", {},
        el("tr", {}, el("th", { colspan: 3 }, "Total params"), el("td", { class: "num", "data-testid": "total-params" }, number(summary.total_params))),
        el("tr", {}, el("th", { colspan: 3 }, "Trainable"), el("td", { class: "num" }, number(summary.trainable_params))),
        el("tr", {}, el("th", { colspan: 3 }, "Non-trainable"), el("td", { class: "num" }, number(summary.non_trainable_params))))));
  }

  /* Chart.js in the app's type and colours; call once on a page that draws charts. */
  function styleCharts() {
    if (!window.Chart) return null;
    const d = window.Chart.defaults;
    d.font.family = getComputedStyle(document.body).fontFamily;
    d.font.size = 12;
    d.color = "#667085";
    d.borderColor = "#eaecf0";
    return window.Chart;
  }

  function chartAxis(title, extra) {
    return Object.assign({ title: { display: true, text: title, color: "#475467", font: { weight: "600" } },
      grid: { color: "#f2f4f7" }, border: { color: "#d0d5dd" } }, extra);
  }

  window.VL = { poll, el, summaryTable, styleCharts, chartAxis, badge, progressBar, duration, bytes, percent, localize, ago, json,
    ACTIVE: ["queued", "running"] };
})();

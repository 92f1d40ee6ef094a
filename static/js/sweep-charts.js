/* The sweep page's pictures, from GET /api/sweeps/<id>/: parallel coordinates of the searched settings
   against the objective (SVG drawn here: one axis per setting, log axes for log ranges, categorical
   axes for listed values, one line per ended trial coloured by its score, pruned ones dashed), the
   objective by trial with the best so far (Chart.js), the settings' importance as bars, and the
   trials' validation curves overlaid. VL.sweepCharts.draw(sweep, meta) redraws what changed. */
(function () {
  "use strict";
  const { el } = window.VL;
  const SVG = "http://www.w3.org/2000/svg";
  const Chart = VL.styleCharts();
  const METRIC_NAMES = { val_accuracy: "Validation accuracy", val_loss: "Validation loss", accuracy: "Training accuracy",
    loss: "Training loss", test_accuracy: "Test accuracy", bleu4: "BLEU-4" };
  const PRUNED = "#dc6803";

  const isNum = x => typeof x === "number" && Number.isFinite(x);
  const isAccuracy = metric => /acc/.test(metric || "");

  /* How a score reads: accuracies in percent, losses and BLEU as decimals. */
  function formatValue(metric, x, digits) {
    if (!isNum(x)) return "—";
    if (isAccuracy(metric)) return VL.percent(x, digits === undefined ? 2 : digits);
    return x.toFixed(digits === undefined ? 4 : digits);
  }

  /* How a setting's value reads: 0.00123, 1.2e-5, 64, on/off. */
  function formatParam(x) {
    if (x === null || x === undefined) return "off";
    if (x === true) return "on";
    if (x === false) return "off";
    if (typeof x !== "number") return String(x);
    if (Number.isInteger(x)) return String(x);
    if (Math.abs(x) < 0.001) return x.toExponential(1).replace("e-", "e−");
    return String(Number(x.toPrecision(3)));
  }

  /* Light (worse) to dark indigo (better): t in [0, 1], 1 the best. */
  function scoreColor(t) {
    const from = [165, 180, 252], to = [49, 46, 129];
    const c = from.map((f, i) => Math.round(f + (to[i] - f) * Math.max(0, Math.min(1, t))));
    return "rgb(" + c.join(",") + ")";
  }

  /* An SVG element; `full`, when the text was shortened, becomes its tooltip. */
  function svg(tag, attrs, text, full) {
    const node = document.createElementNS(SVG, tag);
    Object.entries(attrs || {}).forEach(([k, v]) => { if (v !== null && v !== undefined) node.setAttribute(k, v); });
    if (text !== undefined) node.textContent = text;
    if (full && full !== text) node.append(svg("title", {}, full));
    return node;
  }

  /* A round step for about `count` ticks over a span: 1, 2, 2.5 or 5 times a power of ten. */
  function niceStep(span, count) {
    const raw = span / Math.max(1, count), power = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map(m => m * power).find(x => x >= raw - 1e-12);
    return step || 10 * power;
  }

  /* Round ticks inside [lo, hi]. */
  function niceTicks(lo, hi, count, whole) {
    let step = niceStep(hi - lo, count);
    if (whole) step = Math.max(1, Math.round(step));
    const ticks = [];
    for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
    return ticks;
  }

  /* The trials that have a score and ended (finished or pruned): what the pictures show. */
  function scored(sweep) {
    return sweep.trials.filter(t => isNum(t.value) && (t.status === "succeeded" || t.status === "pruned"));
  }

  /* t in [0, 1] per trial, 1 the best score among them. */
  function ranker(sweep, trials) {
    const values = trials.map(t => t.value);
    const lo = Math.min(...values), hi = Math.max(...values);
    return value => {
      if (!(hi > lo)) return 1;
      const t = (value - lo) / (hi - lo);
      return sweep.objective.direction === "max" ? t : 1 - t;
    };
  }

  /* ---------------- parallel coordinates ---------------- */

  /* One axis: where a value sits (0 bottom .. 1 top), its ticks, and its title. */
  function paramAxis(name, spec, meta, trials) {
    const info = (meta.params || {})[name] || {};
    const title = info.label || name;
    if (spec.type === "choice") {
      const values = spec.values.slice();
      trials.forEach(t => { if (!values.some(v => JSON.stringify(v) === JSON.stringify(t.params[name]))) values.push(t.params[name]); });
      const at = v => {
        const i = values.findIndex(x => JSON.stringify(x) === JSON.stringify(v));
        return values.length === 1 ? 0.5 : i / (values.length - 1);
      };
      return { name, title, pos: at, ticks: values.map(v => [at(v), formatParam(v)]), kind: "choice" };
    }
    let lo = spec.low, hi = spec.high;
    trials.forEach(t => { const v = t.params[name]; if (isNum(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } });
    const log = (spec.type === "log_uniform" || spec.log) && lo > 0;
    const f = log ? Math.log10 : x => x;
    const a = f(lo), b = f(hi);
    const pos = v => (isNum(v) ? (b > a ? (f(v) - a) / (b - a) : 0.5) : null);
    const ticks = [];
    if (log) {
      for (let e = Math.ceil(a - 1e-9); e <= Math.floor(b + 1e-9); e++) ticks.push([pos(Math.pow(10, e)), formatParam(Math.pow(10, e))]);
      if (ticks.length < 2) [lo, hi].forEach(v => ticks.push([pos(v), formatParam(v)]));  // a range inside one decade
    } else if (hi > lo) {
      niceTicks(lo, hi, 4, spec.type === "int").forEach(v => ticks.push([pos(v), formatParam(v)]));
    } else {
      ticks.push([0.5, formatParam(lo)]);
    }
    return { name, title: title + (log ? " (log)" : ""), pos, ticks, kind: log ? "log" : "linear" };
  }

  function objectiveAxis(sweep, trials) {
    const metric = sweep.objective.metric;
    const values = trials.map(t => t.value);
    let lo = values.length ? Math.min(...values) : 0, hi = values.length ? Math.max(...values) : 1;
    if (!(hi > lo)) { const pad = Math.abs(lo) * 0.05 || 0.05; lo -= pad; hi += pad; }
    const step = niceStep(hi - lo, 4);  // the axis runs between round numbers around the scores
    lo = Math.floor(lo / step + 1e-9) * step;
    hi = Math.ceil(hi / step - 1e-9) * step;
    const pos = v => (v - lo) / (hi - lo);
    const digits = Math.max(0, -Math.floor(Math.log10(step * (isAccuracy(metric) ? 100 : 1)) + 1e-9));
    const ticks = niceTicks(lo, hi, 4).map(v => [pos(v), formatValue(metric, v, digits)]);
    return { name: "__objective", title: sweep.objective.label || METRIC_NAMES[metric] || metric, pos, ticks, kind: "objective" };
  }

  function drawParallel(sweep, meta) {
    const box = document.getElementById("parcoords");
    const trials = scored(sweep);
    const names = Object.keys(sweep.space || {});
    const axes = names.map(n => paramAxis(n, sweep.space[n], meta, trials)).concat([objectiveAxis(sweep, trials)]);
    const H = 310, top = 54, bottom = 22, left = 60, right = 62, gap = 110;  // gap: the least room between axes
    const width = Math.max(box.clientWidth || 640, left + right + (axes.length - 1) * gap);
    const room = axes.length > 1 ? (width - left - right) / (axes.length - 1) : width;  // for an axis' title
    const x = i => (axes.length === 1 ? width / 2 : left + (width - left - right) * i / (axes.length - 1));
    const y = p => top + (1 - p) * (H - top - bottom);
    const rank = ranker(sweep, trials);
    const best = sweep.best ? sweep.best.job : null;
    const chart = svg("svg", { id: "parcoords-svg", class: "parcoords-svg", width, height: H, viewBox: "0 0 " + width + " " + H,
      role: "img", "data-testid": "parcoords", "aria-label": "Parallel coordinates: " + axes.map(a => a.title).join(", ") + "; " + trials.length + " trial" + (trials.length === 1 ? "" : "s") });

    const lines = svg("g", { class: "pc-lines" });
    const ordered = trials.slice().sort((p, q) => (q.status === "pruned") - (p.status === "pruned"));  // pruned underneath
    ordered.forEach(t => {
      const points = axes.map((axis, i) => {
        const p = axis.kind === "objective" ? axis.pos(t.value) : axis.pos(t.params[axis.name]);
        return isNum(p) ? x(i).toFixed(1) + "," + y(p).toFixed(1) : null;
      });
      if (points.some(p => p === null)) return;
      const label = "Trial " + t.number + ": " + names.map(n => ((meta.params[n] || {}).label || n) + " " + formatParam(t.params[n])).join(", ") +
        " → " + formatValue(sweep.objective.metric, t.value) + (t.status === "pruned" ? " (pruned)" : "") + (t.job === best ? " (best)" : "");
      const line = svg("polyline", { class: "pc-line" + (t.status === "pruned" ? " pruned" : "") + (t.job === best ? " best" : ""),
        points: points.join(" "), stroke: scoreColor(rank(t.value)), "data-trial": t.number });
      line.append(svg("title", {}, label));
      lines.append(line);
    });
    // The best on top of everything.
    const bestLine = lines.querySelector(".pc-line.best");
    if (bestLine) lines.append(bestLine);

    axes.forEach((axis, i) => {
      const g = svg("g", { class: "pc-axis" + (axis.kind === "objective" ? " objective" : ""), "data-axis": axis.name, "data-scale": axis.kind });
      g.append(svg("line", { x1: x(i), x2: x(i), y1: y(0), y2: y(1) }));
      const side = axis.kind === "objective" && axes.length > 1 ? 1 : -1;  // the score's labels on its right
      axis.ticks.forEach(([p, text]) => {
        if (!isNum(p) || p < -1e-9 || p > 1 + 1e-9) return;
        g.append(svg("line", { class: "pc-tick", x1: x(i) + 4 * side, x2: x(i), y1: y(p), y2: y(p) }));
        g.append(svg("text", { class: "pc-tick-label", x: x(i) + 7 * side, y: y(p) + 3.5, "text-anchor": side > 0 ? "start" : "end" }, text));
      });
      const anchor = axes.length === 1 ? "middle" : i === 0 ? "start" : i === axes.length - 1 ? "end" : "middle";
      const tx = axes.length === 1 ? x(i) : i === 0 ? 4 : i === axes.length - 1 ? width - 4 : x(i);
      const fits = Math.max(8, Math.floor((i === 0 || i === axes.length - 1 ? room / 2 + 50 : room - 10) / 7));
      const name = axis.title.length > fits ? axis.title.slice(0, fits - 1) + "…" : axis.title;
      g.append(svg("text", { class: "pc-title", x: tx, y: 16, "text-anchor": anchor }, name, axis.title));
      if (axis.kind === "objective") {
        g.append(svg("text", { class: "pc-sub", x: tx, y: 31, "text-anchor": anchor }, sweep.objective.direction === "max" ? "higher is better" : "lower is better"));
      }
      chart.append(g);
    });
    chart.insertBefore(lines, chart.firstChild);  // under the axes, so that their labels stay legible
    const parts = [el("div", { class: "parcoords-scroll" }, chart)];
    if (trials.length) {
      parts.push(el("p", { class: "pc-legend small muted" },
        el("span", { class: "pc-key" }, "worse ", el("span", { class: "pc-gradient", "aria-hidden": "true" }), " better"),
        el("span", { class: "pc-key" }, el("span", { class: "pc-dash", "aria-hidden": "true" }), " pruned"),
        el("span", { class: "pc-key" }, el("span", { class: "pc-thick", "aria-hidden": "true" }), " the best")));
    } else {
      parts.push(el("p", { class: "empty-state pc-empty" }, sweep.status === "running"
        ? "Lines appear here as trials end." : "No trial ended with a score, so there is nothing to draw."));
    }
    box.replaceChildren(...parts);
  }

  /* ---------------- objective by trial ---------------- */

  const charts = { objective: null, curves: null };

  function yAxis(metric, title) {
    return isAccuracy(metric)
      ? VL.chartAxis(title, { ticks: { callback: v => Math.round(v * 1000) / 10 + "%" } })
      : VL.chartAxis(title, {});
  }

  function upsert(key, canvas, config) {
    if (!Chart) return;
    if (charts[key]) {
      charts[key].data = config.data;
      charts[key].options = config.options;
      charts[key].update("none");
    } else {
      charts[key] = new Chart(canvas, config);
    }
  }

  function drawObjective(sweep) {
    const metric = sweep.objective.metric;
    const trials = scored(sweep).slice().sort((a, b) => a.number - b.number);
    const better = sweep.objective.direction === "max" ? Math.max : Math.min;
    let best = null;
    const steps = [];
    trials.filter(t => t.status === "succeeded").forEach(t => {
      best = best === null ? t.value : better(best, t.value);
      steps.push({ x: t.number, y: best });
    });
    const point = t => ({ x: t.number, y: t.value, trial: t });
    const datasets = [
      { type: "line", label: "Best so far", data: steps, borderColor: "#12b76a", backgroundColor: "#12b76a", borderWidth: 2,
        stepped: "before", pointRadius: 0, order: 2 },
      { type: "scatter", label: "Finished", data: trials.filter(t => t.status === "succeeded").map(point),
        backgroundColor: "#4f46e5", borderColor: "#4f46e5", pointRadius: 5, pointHoverRadius: 7, order: 1 },
      { type: "scatter", label: "Pruned", data: trials.filter(t => t.status === "pruned").map(point),
        backgroundColor: "#fff", borderColor: PRUNED, borderWidth: 2, pointRadius: 5, pointHoverRadius: 7, order: 1 },
    ];
    const title = sweep.objective.label || METRIC_NAMES[metric] || metric;
    upsert("objective", document.getElementById("objective-chart"), {
      type: "scatter", data: { datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        plugins: {
          legend: { position: "bottom", labels: { usePointStyle: true, boxWidth: 8, boxHeight: 8 } },
          tooltip: { callbacks: {
            title: items => (items.length ? "Trial " + items[0].parsed.x : ""),
            label: item => " " + item.dataset.label + ": " + formatValue(metric, item.parsed.y),
          } },
        },
        scales: {
          x: VL.chartAxis("Trial", { type: "linear", ticks: { precision: 0 }, grid: { display: false },
            suggestedMin: 0, suggestedMax: Math.max(1, (sweep.trials_planned || 1) - 1) }),
          y: yAxis(metric, title),
        },
      },
    });
    document.getElementById("objective-note").textContent = trials.length
      ? "Each trial's score in the order they ran (hollow: pruned, its best before it stopped); the green line is the best finished so far."
      : "Each trial's score appears here as it ends; the green line will be the best so far.";
  }

  /* ---------------- importance ---------------- */

  function drawImportance(sweep, meta) {
    const box = document.getElementById("importance");
    const entries = Object.entries(sweep.importance || {}).filter(([, v]) => isNum(v)).sort((a, b) => b[1] - a[1]);
    if (!entries.length) {
      box.replaceChildren(el("p", { class: "empty-state", "data-testid": "importance-empty" },
        "Appears after two trials finish: it needs finished trials to compare."));
      return;
    }
    const top = Math.max(...entries.map(([, v]) => v)) || 1;
    box.replaceChildren(el("ul", { class: "importance-bars" }, ...entries.map(([name, share]) => el("li", { "data-param": name },
      el("span", { class: "importance-name" }, (meta.params[name] || {}).label || name),
      el("span", { class: "importance-bar", "aria-hidden": "true" }, el("span", { style: "width:" + (share / top * 100).toFixed(1) + "%" })),
      el("span", { class: "importance-value" }, Math.round(share * 100) + "%")))));
  }

  /* ---------------- curves ---------------- */

  function drawCurves(sweep) {
    const trials = sweep.trials.filter(t => t.curve && (t.curve.points || []).length);
    const card = document.getElementById("curves-card");
    card.hidden = !trials.length;
    if (!trials.length) return;
    const metric = trials[0].curve.metric;
    const ended = scored(sweep);
    const rank = ranker(sweep, ended.length ? ended : trials);
    const best = sweep.best ? sweep.best.job : null;
    const datasets = trials.map(t => {
      const pruned = t.status === "pruned";
      const color = pruned ? PRUNED : isNum(t.value) ? scoreColor(rank(t.value)) : "#98a2b3";
      return {
        label: "Trial " + t.number + (pruned ? " (pruned)" : "") + (t.job === best ? " (best)" : ""),
        data: t.curve.points.map(p => ({ x: p[0], y: p[1] })), borderColor: color, backgroundColor: color,
        borderWidth: t.job === best ? 3 : 1.6, borderDash: pruned ? [5, 4] : [], pointRadius: pruned ? 2.5 : 1.5,
        pointStyle: pruned ? "crossRot" : "circle", tension: 0.2, order: t.job === best ? 0 : 1,
      };
    });
    const epochs = Math.max(1, ...sweep.trials.map(t => t.epochs || 0));
    upsert("curves", document.getElementById("curves-chart"), {
      type: "line", data: { datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false, parsing: true,
        interaction: { mode: "nearest", intersect: false },
        plugins: {
          // One key per trial while they fit; more (or a phone) and the tooltip says which trial a line is.
          legend: { display: datasets.length <= 10 && document.getElementById("curves-card").clientWidth >= 560,
            position: "bottom", labels: { usePointStyle: true, boxWidth: 8, boxHeight: 8 } },
          tooltip: { callbacks: { title: items => (items.length ? "Epoch " + items[0].parsed.x : ""),
            label: item => " " + item.dataset.label + ": " + formatValue(metric, item.parsed.y) } },
        },
        scales: {
          x: VL.chartAxis("Epoch", { type: "linear", min: 1, suggestedMax: epochs, ticks: { precision: 0 }, grid: { display: false } }),
          y: yAxis(metric, METRIC_NAMES[metric] || metric),
        },
      },
    });
    document.getElementById("curves-note").textContent = (METRIC_NAMES[metric] || metric) +
      " epoch by epoch, one line per ended trial (the darker, the better its score); pruned trials are dashed and stop where the pruner stopped them.";
  }

  let signature = "", resizeWidth = 0;
  let last = null;

  function draw(sweep, meta) {
    last = [sweep, meta];
    const now = JSON.stringify([sweep.trials.map(t => [t.status, t.value, t.curve]), sweep.importance, sweep.best, sweep.status]);
    if (now === signature) return;
    signature = now;
    drawParallel(sweep, meta);
    drawObjective(sweep);
    drawImportance(sweep, meta);
    drawCurves(sweep);
  }

  // The SVG follows its card's width (charts follow theirs by themselves).
  if (window.ResizeObserver) {
    new ResizeObserver(entries => {
      const width = Math.round(entries[0].contentRect.width);
      if (last && Math.abs(width - resizeWidth) > 8) { resizeWidth = width; drawParallel(last[0], last[1]); }
    }).observe(document.getElementById("parcoords"));
  }

  window.VL.sweepCharts = { draw, formatValue, formatParam };
})();

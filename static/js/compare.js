/* Compare 2 to 10 runs: the answer of GET /api/compare/ (embedded in the page, fetched again while a
   run is still going, or with ?full=1 for every epoch) drawn as a summary table, the repeats, the
   parameter table with its "only what differs" switch, overlaid curves of any metric against the
   epoch or wall time with each run's best epoch marked, classifiers compared image by image
   (McNemar's test, thumbnails), and caption models' BLEU and captions side by side. */
(function () {
  "use strict";
  const { el, duration } = window.VL;
  const ids = VL.json("compare-ids");
  const COLORS = ["#4f46e5", "#f79009", "#12b76a", "#d92d20", "#0ba5ec", "#ee46bc", "#7a5af8", "#475467", "#a15c07", "#099250"];
  const NAMES = {
    loss: "Training loss", accuracy: "Training accuracy", val_loss: "Validation loss", val_accuracy: "Validation accuracy",
  };
  /* Declared parameters come with their labels (the answer's param_labels, from webapp/experiments/params.py);
     these are the recorded facts that no declaration names, where "Dataset name" would read worse. */
  const PARAM_NAMES = { dataset_name: "Dataset", dataset_hash: "Dataset content" };

  const state = { data: VL.json("compare-data"), metric: null, x: "epoch", full: false, pair: null, signature: "", chart: null };
  const Chart = VL.styleCharts();

  const isNum = x => typeof x === "number" && !Number.isNaN(x);
  const pct = VL.percent;
  const fixed = (x, digits) => (isNum(x) ? x.toFixed(digits) : "—");
  const plural = (n, word) => n.toLocaleString() + " " + word + (n === 1 ? "" : "s");
  const humanize = name => PARAM_NAMES[name] || (name.charAt(0).toUpperCase() + name.slice(1)).replace(/_/g, " ");
  const metricName = name => NAMES[name] || humanize(name);
  const isAccuracy = name => /acc/i.test(name);

  function runs() { return state.data.jobs; }
  function color(jobId) { return COLORS[Math.max(0, runs().findIndex(j => j.id === jobId)) % COLORS.length]; }
  function job(jobId) { return runs().find(j => j.id === jobId); }

  function runKey(j, extra) {
    return el("span", { class: "run-key" }, el("span", { class: "swatch", style: "background:" + color(j.id), "aria-hidden": "true" }),
      el("a", { href: "/jobs/" + j.id + "/" }, j.label), extra || null);
  }

  function sublabel(j) {
    const parts = [j.architecture || j.kind_label];
    if (j.status !== "succeeded") parts.push(j.status);
    return parts.join(" · ");
  }

  /* ---------------- summary ---------------- */

  /* "git:<commit>[+changes]" as a short commit, noting uncommitted changes; other versions as they are. */
  function codeVersion(v) {
    if (!v) return "—";
    if (!v.startsWith("git:")) return v;
    const changed = v.endsWith("+changes");
    return el("span", {}, el("code", {}, v.slice(4, 11)), changed ? el("span", { class: "run-sub" }, "with local changes") : null);
  }

  const COLUMNS = [
    { key: "test_accuracy", title: "Test accuracy", show: v => pct(v), best: "max" },
    { key: "best_val_accuracy", title: "Best val. accuracy", show: v => pct(v), best: "max" },
    { key: "best_val_loss", title: "Best val. loss", show: v => fixed(v, 3), best: "min" },
    { key: "bleu4", title: "BLEU-4", show: v => fixed(v, 3), best: "max" },
    { key: "best_epoch", title: "Best epoch", show: v => (v === null || v === undefined ? "—" : String(v)) },
    { key: "epochs_run", title: "Epochs", show: v => (v === null || v === undefined ? "—" : String(v)) },
    { key: "duration_seconds", title: "Duration", show: v => (isNum(v) ? duration(v) : "—") },
    { key: "device", title: "Device", text: true, show: v => v || "—" },
    { key: "dataset_name", title: "Dataset", text: true, show: v => v || "—" },
    { key: "seed", title: "Seed", show: v => (v === null || v === undefined ? "—" : String(v)) },
    { key: "code", title: "Code", text: true, show: codeVersion, title_of: v => v || "" },
  ];

  function drawSummary() {
    const jobs = runs();
    const columns = COLUMNS.filter(c => jobs.some(j => j[c.key] !== null && j[c.key] !== undefined && j[c.key] !== ""));
    const bestOf = {};
    columns.filter(c => c.best).forEach(c => {
      const values = jobs.map(j => j[c.key]).filter(isNum);
      if (values.length > 1) bestOf[c.key] = c.best === "max" ? Math.max(...values) : Math.min(...values);
    });
    const table = el("table", { class: "table compare-table", id: "summary-table", "data-testid": "summary-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Run"), ...columns.map(c => el("th", { class: c.text ? null : "num" }, c.title)))),
      el("tbody", {}, ...jobs.map(j => el("tr", { "data-job": j.id },
        el("td", {}, runKey(j), el("span", { class: "run-sub" }, sublabel(j))),
        ...columns.map(c => el("td", {
          class: [c.text ? null : "num", bestOf[c.key] !== undefined && j[c.key] === bestOf[c.key] ? "best" : null].filter(Boolean).join(" ") || null,
          "data-key": c.key, title: c.title_of ? c.title_of(j[c.key]) : null,
        }, c.show(j[c.key])))))));
    document.getElementById("summary").replaceChildren(table);
  }

  /* ---------------- repeats ---------------- */

  function drawRepeats() {
    const repeats = state.data.repeats || [];
    document.getElementById("repeats-card").hidden = !repeats.length;
    document.getElementById("repeats").replaceChildren(...repeats.map(r => el("li", { "data-testid": "repeat" },
      r.sentence, r.same_seed ? null : el("span", { class: "small muted" }, " (its seed differs from the original's)"))));
  }

  /* ---------------- parameters ---------------- */

  function paramValue(value) {
    if (value === null || value === undefined || value === "") return "—";
    if (value === true) return "yes";
    if (value === false) return "no";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function drawParams() {
    const jobs = runs();
    const differing = new Set(state.data.differing || []);
    const only = document.getElementById("only-differing").checked;
    const names = Object.keys(state.data.params || {});
    const shown = names.filter(n => !only || differing.has(n));
    document.getElementById("only-differing-label").textContent = "Only what differs (" + differing.size + " of " + names.length + ")";
    document.getElementById("params-empty").hidden = shown.length > 0;
    const table = el("table", { class: "table compare-table params-table", id: "params-table", "data-testid": "params-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Parameter"), ...jobs.map(j => el("th", {}, runKey(j))))),
      el("tbody", {}, ...shown.map(name => el("tr", { class: differing.has(name) ? "differs" : null, "data-param": name },
        el("th", { scope: "row", title: name }, (state.data.param_labels || {})[name] || humanize(name)),
        ...state.data.params[name].map(v => {
          const text = paramValue(v);
          const short = name === "dataset_hash" && typeof v === "string" && v.length > 12 ? v.slice(0, 12) + "…" : text;
          return el("td", { title: short !== text ? text : null }, short);
        })))));
    document.getElementById("params").replaceChildren(table);
    document.getElementById("params").hidden = !shown.length;
  }

  /* ---------------- curves ---------------- */

  function metricOptions() {
    const names = state.data.metrics.names || [];
    const select = document.getElementById("curve-metric");
    if (!names.includes(state.metric)) {
      state.metric = ["val_accuracy", "val_loss", "accuracy", "loss"].find(n => names.includes(n)) || names[0] || null;
    }
    select.replaceChildren(...names.map(n => el("option", { value: n, selected: n === state.metric ? true : null }, metricName(n))));
    select.value = state.metric || "";
    select.disabled = !names.length;
  }

  function formatY(value) { return isAccuracy(state.metric) ? pct(value, 2) : fixed(value, 4); }

  function drawCurves() {
    const metrics = state.data.metrics;
    metricOptions();
    const anyDownsampled = metrics.runs.some(r => r.downsampled);
    document.getElementById("full-series-label").hidden = !(anyDownsampled || metrics.full);
    document.getElementById("full-series").checked = Boolean(metrics.full);
    const empty = !state.metric;
    document.getElementById("curves-empty").hidden = !empty;
    document.getElementById("chart-box").hidden = empty;
    if (empty || !Chart) return;
    const byTime = state.x === "time";
    // Wall time in the unit that suits the longest run: seconds, minutes or hours since each run started.
    const longest = Math.max(0, ...metrics.runs.flatMap(r => (r.series[state.metric] || []).map(p => p[2]).filter(isNum)));
    const [unit, per] = longest < 180 ? ["seconds", 1] : longest < 3 * 3600 ? ["minutes", 60] : ["hours", 3600];
    const datasets = metrics.runs.map(r => {
      const j = job(r.job);
      const points = (r.series[state.metric] || []).filter(p => !byTime || isNum(p[2]))
        .map(p => ({ x: byTime ? p[2] / per : p[0], y: p[1], epoch: p[0], seconds: p[2], best: p[0] === r.best_epoch }));
      const c = color(r.job);
      return {
        label: j.label + (j.architecture ? " " + j.architecture : ""), data: points, borderColor: c, backgroundColor: c,
        borderWidth: 2, tension: 0.2, spanGaps: true, $job: r.job,
        pointStyle: ctx => (ctx.raw && ctx.raw.best ? "rectRot" : "circle"),
        pointRadius: ctx => (ctx.raw && ctx.raw.best ? 7 : (points.length > 60 ? 0 : 2)),
        pointHoverRadius: ctx => (ctx.raw && ctx.raw.best ? 8 : 4),
        pointBackgroundColor: ctx => (ctx.raw && ctx.raw.best ? "#fff" : c),
        pointBorderWidth: ctx => (ctx.raw && ctx.raw.best ? 2.5 : 1),
      };
    });
    const yAxis = isAccuracy(state.metric)
      ? VL.chartAxis(metricName(state.metric), { suggestedMax: 1, ticks: { callback: v => Math.round(v * 100) + "%" } })
      : VL.chartAxis(metricName(state.metric), {});
    const xAxis = VL.chartAxis(byTime ? "Wall time (" + unit + " since the run started)" : "Epoch",
      { type: "linear", grid: { display: false }, ticks: byTime ? {} : { precision: 0 } });
    const options = {
      responsive: true, maintainAspectRatio: false, animation: false, parsing: true,
      interaction: { mode: "nearest", intersect: false },
      plugins: {
        legend: { position: "bottom", labels: { usePointStyle: true, pointStyle: "circle", boxWidth: 8, boxHeight: 8,
          // A run's key is its colour, whatever its first point looks like (a best epoch is hollow).
          generateLabels: chart => Chart.defaults.plugins.legend.labels.generateLabels(chart).map(l =>
            Object.assign(l, { fillStyle: chart.data.datasets[l.datasetIndex].borderColor, pointStyle: "circle" })) } },
        tooltip: {
          callbacks: {
            title: items => (items.length ? "Epoch " + items[0].raw.epoch + (isNum(items[0].raw.seconds) ? " · " + duration(items[0].raw.seconds) : "") : ""),
            label: item => " " + item.dataset.label + ": " + formatY(item.parsed.y) + (item.raw.best ? " (best epoch)" : ""),
          },
        },
      },
      scales: { x: xAxis, y: yAxis },
    };
    if (state.chart) {
      state.chart.data.datasets = datasets;
      state.chart.options = options;
      state.chart.update("none");
    } else {
      state.chart = new Chart(document.getElementById("compare-chart"), { type: "line", data: { datasets }, options });
    }
    document.getElementById("compare-chart").setAttribute("aria-label",
      metricName(state.metric) + " of every run against " + (byTime ? "wall time" : "the epoch"));
  }

  async function reload(full) {
    const query = new URLSearchParams({ jobs: ids });
    if (full) query.set("full", "1");
    return VL.api("/api/compare/?" + query);
  }

  /* ---------------- image by image ---------------- */

  function thumbnail(example) {
    const title = example.path;
    if (!example.thumb && !example.image) {
      return el("div", { class: "thumb thumb-missing", title }, el("span", { class: "small muted" }, "image not available"));
    }
    const img = el("img", { src: example.thumb || example.image, alt: example.path, loading: "lazy" });
    img.addEventListener("load", () => { if (img.naturalWidth < 64) img.classList.add("pixelated"); });
    return el("a", { class: "thumb", href: example.image || example.thumb, target: "_blank", rel: "noopener", title }, img);
  }

  function gallery(pair, side) {
    const a = job(pair.a), b = job(pair.b);
    const [winner, loser] = side === "a_only_right" ? [a, b] : [b, a];
    const examples = pair.examples[side] || [];
    const count = pair[side];
    const head = el("h3", {}, "Only ", runKey(winner), " got " + (count === 1 ? "this one" : "these") + " right",
      el("span", { class: "small muted" }, "(" + plural(count, "image") + ")"));
    if (!examples.length) {
      return el("div", { class: "pair-side", "data-side": side }, head,
        el("p", { class: "small muted" }, "None: every image " + winner.label + " got right, " + loser.label + " got right too."));
    }
    const figures = examples.map(x => el("figure", { class: "mistake", "data-testid": "agreement-image" }, thumbnail(x),
      el("figcaption", {},
        el("span", { class: "mistake-line" }, el("span", { class: "muted" }, "true "), el("strong", { class: "mistake-true" }, x.true)),
        el("span", { class: "mistake-line" }, el("span", { class: "muted" }, a.label + " said "),
          el("strong", { class: x.a_predicted === x.true ? "said-right" : "said-wrong" }, x.a_predicted)),
        el("span", { class: "mistake-line" }, el("span", { class: "muted" }, b.label + " said "),
          el("strong", { class: x.b_predicted === x.true ? "said-right" : "said-wrong" }, x.b_predicted)))));
    return el("div", { class: "pair-side", "data-side": side }, head, el("div", { class: "mistakes" }, ...figures),
      count > examples.length ? el("p", { class: "small muted more-note" }, "The first " + examples.length + " of " + count.toLocaleString() + ", by file name.") : null);
  }

  function pairDetail(pair) {
    const detail = document.getElementById("pair-detail");
    if (!pair) { detail.hidden = true; detail.replaceChildren(); return; }
    const a = job(pair.a), b = job(pair.b);
    const n = pair.images || 1;
    const parts = [
      ["both right", pair.both_right, "#a6b3c9"],
      ["only " + a.label + " right", pair.a_only_right, color(a.id)],
      ["only " + b.label + " right", pair.b_only_right, color(b.id)],
      ["both wrong", pair.both_wrong, "#d0d5dd"],
    ];
    detail.replaceChildren(
      el("h3", {}, runKey(a), " against ", runKey(b), el("span", { class: "small muted" }, "on " + plural(pair.images, "test image"))),
      el("p", { class: "verdict" + (pair.p_value < 0.05 ? " clear" : ""), id: "agreement-sentence", "data-testid": "agreement-sentence" }, pair.sentence),
      el("div", { class: "agreement-bar", "aria-hidden": "true" }, ...parts.map(([, count, c]) =>
        el("span", { style: "width:" + (100 * count / n).toFixed(2) + "%; background:" + c }))),
      el("div", { class: "agreement-legend" }, ...parts.map(([label, count, c]) =>
        el("span", {}, el("i", { style: "background:" + c }), label + ": " + count.toLocaleString()))),
      el("div", { class: "pair-sides" }, gallery(pair, "a_only_right"), gallery(pair, "b_only_right")));
    detail.hidden = false;
  }

  function drawPairs() {
    const pairs = state.data.pairs || [];
    const classifiers = runs().filter(j => j.kind === "train");
    const card = document.getElementById("agreement-card");
    card.hidden = classifiers.length < 2;
    if (card.hidden) return;
    const comparable = pairs.filter(p => p.comparable);
    const empty = document.getElementById("pairs-empty");
    empty.hidden = comparable.length > 0;
    empty.textContent = pairs.length === 1
      ? "These runs were not scored on the same test images, so they cannot be compared image by image. " + (pairs[0].reason || "")
      : "None of these runs were scored on the same test images as another, so they cannot be compared image by image.";
    if (!comparable.some(p => p.a + "-" + p.b === state.pair)) state.pair = comparable.length ? comparable[0].a + "-" + comparable[0].b : null;
    const rows = pairs.map(p => {
      const key = p.a + "-" + p.b;
      const a = job(p.a), b = job(p.b);
      const who = el("td", {}, runKey(a), el("span", { class: "muted" }, " vs "), runKey(b));
      if (!p.comparable) {
        return el("tr", { "data-pair": key, class: "not-comparable" }, who, el("td", { class: "reason", colspan: 6 }, p.reason || ""));
      }
      const button = el("button", { type: "button", class: "btn btn-small", "aria-pressed": key === state.pair ? "true" : "false" },
        key === state.pair ? "Shown below" : "Show images");
      button.addEventListener("click", () => { state.pair = key; drawPairs(); document.getElementById("pair-detail").scrollIntoView({ block: "nearest" }); });
      return el("tr", { "data-pair": key, class: key === state.pair ? "selected" : null }, who,
        el("td", { class: "num" }, p.images.toLocaleString()),
        el("td", { class: "num", "data-key": "a_only_right" }, p.a_only_right.toLocaleString()),
        el("td", { class: "num", "data-key": "b_only_right" }, p.b_only_right.toLocaleString()),
        el("td", { class: "num" }, p.both_wrong.toLocaleString()),
        el("td", { class: "num", "data-key": "p_value" }, p.p_value < 0.001 ? "< 0.001" : p.p_value.toFixed(3)),
        el("td", { class: "num" }, button));
    });
    const showTable = pairs.length > 1 || comparable.length > 0;
    const table = el("table", { class: "table compare-table pairs-table", id: "pairs-table", "data-testid": "pairs-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Runs (A vs B)"), el("th", { class: "num" }, "Images"),
        el("th", { class: "num" }, "Only A right"), el("th", { class: "num" }, "Only B right"),
        el("th", { class: "num" }, "Both wrong"), el("th", { class: "num" }, "p"), el("th", { "aria-label": "Show the images" }))),
      el("tbody", {}, ...rows));
    document.getElementById("pairs").replaceChildren(showTable ? table : el("span"));
    pairDetail(comparable.find(p => p.a + "-" + p.b === state.pair));
  }

  /* ---------------- captions ---------------- */

  function drawCaptions() {
    const captions = state.data.captions || { runs: [], photos: [] };
    const card = document.getElementById("captions-card");
    card.hidden = !captions.runs.length;
    if (card.hidden) return;
    const keys = ["bleu1", "bleu2", "bleu3", "bleu4"];
    const best = {};
    keys.forEach(k => {
      const values = captions.runs.map(r => r.greedy && r.greedy[k]).filter(isNum);
      if (values.length > 1) best[k] = Math.max(...values);
    });
    const table = el("table", { class: "table compare-table bleu-compare", id: "bleu-compare-table", "data-testid": "bleu-compare" },
      el("thead", {}, el("tr", {}, el("th", {}, "Run"), ...keys.map(k => el("th", { class: "num" }, "BLEU-" + k.slice(-1))),
        el("th", { class: "num" }, "Beam BLEU-4"), el("th", { class: "num" }, "Baseline BLEU-4"))),
      el("tbody", {}, ...captions.runs.map(r => el("tr", { "data-job": r.job },
        el("td", {}, runKey(job(r.job))),
        ...keys.map(k => el("td", { class: "num" + (best[k] !== undefined && r.greedy[k] === best[k] ? " best" : "") }, fixed(r.greedy[k], 3))),
        el("td", { class: "num" }, r.beam ? fixed(r.beam.bleu4, 3) + (r.beam_width ? " (width " + r.beam_width + ")" : "") : "—"),
        el("td", { class: "num", title: r.baseline_caption ? "always says: " + r.baseline_caption : null }, r.baseline ? fixed(r.baseline.bleu4, 3) : "—")))));
    document.getElementById("bleu-compare").replaceChildren(table);
    const photos = captions.photos || [];
    const empty = document.getElementById("captions-empty");
    empty.hidden = photos.length > 0 || captions.runs.length < 2;
    empty.textContent = captions.note || "No test photo was captioned by two of these runs.";
    document.getElementById("caption-photos").replaceChildren(...photos.map(photo => el("figure", { class: "caption-example", "data-testid": "caption-photo" },
      thumbnail({ path: photo.key, thumb: photo.thumb, image: photo.image }),
      el("figcaption", {},
        el("ul", { class: "run-captions" }, ...photo.captions.map(c => el("li", {},
          runKey(job(c.job)), el("span", { class: "greedy" }, c.greedy || "—"),
          c.beam && c.beam !== c.greedy ? el("span", { class: "beam" }, "beam: " + c.beam) : null))),
        el("p", { class: "gallery-refs-title small muted" }, "People wrote"),
        el("ul", { class: "gallery-refs small" }, ...photo.references.slice(0, 3).map(r => el("li", {}, r)))))));
  }

  /* ---------------- the page ---------------- */

  function draw() {
    const signature = JSON.stringify(state.data, (k, v) => (k === "generated_at" || k === "duration_seconds" ? undefined : v));
    if (signature === state.signature) return;
    state.signature = signature;
    document.getElementById("compare-live").hidden = !state.data.active;
    drawSummary();
    drawRepeats();
    drawParams();
    drawCurves();
    drawPairs();
    drawCaptions();
  }

  document.getElementById("only-differing").addEventListener("change", drawParams);
  document.getElementById("curve-metric").addEventListener("change", e => { state.metric = e.target.value; drawCurves(); });
  [["x-epoch", "epoch"], ["x-time", "time"]].forEach(([id, x]) => {
    document.getElementById(id).addEventListener("click", () => {
      state.x = x;
      document.getElementById("x-epoch").setAttribute("aria-pressed", String(x === "epoch"));
      document.getElementById("x-time").setAttribute("aria-pressed", String(x === "time"));
      drawCurves();
    });
  });
  const errorBox = document.getElementById("compare-error");
  const why = err => (err.status ? "HTTP " + err.status : "no answer");  // VL.api's Error: 0 when the server did not answer
  document.getElementById("full-series").addEventListener("change", async e => {
    state.full = e.target.checked;
    try {
      const data = await reload(state.full);
      state.data.metrics = data.metrics;
      errorBox.hidden = true;
      drawCurves();
    } catch (err) {
      errorBox.textContent = "The curves could not be loaded again (" + why(err) + "); reload the page to try again.";
      errorBox.hidden = false;
      e.target.checked = !state.full;
      state.full = !state.full;
    }
  });

  // With only a few parameters differing the switch starts on; with none it starts off (nothing to hide).
  if (!(state.data.differing || []).length) document.getElementById("only-differing").checked = false;
  draw();

  if (state.data.active) {
    const query = () => "/api/compare/?" + new URLSearchParams(Object.assign({ jobs: ids }, state.full ? { full: "1" } : {}));
    VL.poll(query(), data => { state.data = data; errorBox.hidden = true; draw(); }, {
      interval: 3000, hiddenInterval: 15000, until: data => !data.active,
      onError: err => { errorBox.textContent = "Lost touch with the server (" + why(err) + "); retrying."; errorBox.hidden = false; },
    });
  }
})();

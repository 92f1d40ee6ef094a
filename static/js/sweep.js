/* One sweep, live: GET /api/sweeps/<id>/ every two seconds while it runs (or while a run it promoted
   is still going), drawn as the header (status, message, time left, the best, counts, what pruning
   saved), the actions (cancel, add trials, train the best again, fine-tune), a sortable table of the
   trials, and sweep-charts.js's pictures. Nothing reloads the page. */
(function () {
  "use strict";
  const { el, badge, duration } = window.VL;
  const $ = id => document.getElementById(id);
  const meta = VL.json("sweep-page");
  const url = "/api/sweeps/" + meta.id + "/";
  const { formatValue, formatParam } = VL.sweepCharts;
  const METHODS = { tpe: "Bayesian (TPE)", random: "Random", grid: "Grid" };
  const PRUNERS = { median: "Median", hyperband: "Hyperband" };
  const EVERY = 2000, HIDDEN_EVERY = 10000;

  const state = { data: null, sort: { key: "number", dir: 1 }, timer: null, tableSignature: "" };

  const paramLabel = name => (meta.params[name] || {}).label || name.replace(/_/g, " ");
  const plural = (n, word) => n.toLocaleString() + " " + word + (n === 1 ? "" : "s");

  /* ---------------- the header ---------------- */

  function minutes(seconds) {
    if (!(seconds > 0)) return null;
    if (seconds < 90) return "about " + Math.max(1, Math.round(seconds)) + " s";
    if (seconds < 5400) return "about " + Math.round(seconds / 60) + " min";
    return "about " + (seconds / 3600).toFixed(1) + " h";
  }

  /* The API titles an unnamed sweep "mlp on ?" (it looks for the dataset's name where it does not keep it). */
  function title(s) {
    return / on \?$/.test(s.title) && s.dataset_name ? s.title.slice(0, -1) + s.dataset_name : s.title;
  }

  function drawHeader(s) {
    document.title = title(s) + " · sweep #" + s.id + " · VisionLab";
    $("sweep-title").textContent = title(s);
    const status = $("sweep-status");
    if (status.textContent !== s.status) {
      status.replaceWith(Object.assign(badge(s.status), { id: "sweep-status" }));
      $("sweep-status").setAttribute("data-testid", "sweep-status");
    }
    const about = [s.dataset ? el("a", { href: "/datasets/" + s.dataset + "/" }, s.dataset_name || "#" + s.dataset) : "a deleted dataset",
      " · ", el("code", {}, s.architecture), " · " + (METHODS[s.method] || s.method) + " · " + (s.pruning ? PRUNERS[s.pruning] + " pruning" : "no pruning") +
      " · project " + s.project];
    $("sweep-about").replaceChildren(...about);

    const ended = s.trials.filter(t => !VL.ACTIVE.includes(t.status)).length;
    const planned = Math.max(s.trials_planned || 0, s.trials.length);
    const pct = planned ? Math.round(ended / planned * 100) : 0;
    $("sweep-progress").querySelector(".bar").style.width = pct + "%";
    $("sweep-progress").setAttribute("aria-valuenow", pct);
    $("sweep-progress").hidden = s.status !== "running" && ended >= planned;
    const running = s.trials.filter(t => t.status === "running").length;
    $("sweep-message").textContent = s.message || (s.status === "running"
      ? (running ? plural(running, "trial") + " training" : "Waiting for a worker") + " · " + ended + " of " + planned + " ended"
      : s.status === "finished" ? "Finished: every trial has ended." : "Cancelled.");
    const left = s.status === "running" ? minutes(s.seconds_left) : null;
    $("sweep-left").textContent = left ? left + " left" : "";
    $("sweep-left").setAttribute("data-testid", "time-left");

    // The best finished trial.
    const metric = s.objective.metric;
    $("best-label").textContent = "Best " + (s.objective.label || metric).toLowerCase();
    if (s.best) {
      $("best-value").textContent = formatValue(metric, s.best.value);
      $("best-note").replaceChildren(el("a", { href: "/jobs/" + s.best.job + "/" }, "trial " + s.best.number),
        " · " + Object.entries(s.best.params || {}).map(([k, v]) => paramLabel(k).toLowerCase() + " " + formatParam(v)).join(", "));
    } else {
      $("best-value").textContent = "—";
      $("best-note").textContent = s.trials.length ? "no trial has finished yet" : "no trial has started yet";
    }

    $("trials-value").textContent = ended + " of " + planned;
    const counts = Object.entries(s.counts || {}).filter(([, n]) => n);
    $("sweep-counts").replaceChildren(...counts.map(([name, n]) => el("span", { class: "badge badge-" + name, "data-status": name }, n + " " + name)));

    if (s.pruning) {
      const saved = s.seconds_saved_by_pruning || 0, epochs = s.epochs_saved_by_pruning || 0;
      $("pruning-value").textContent = (s.counts || {}).pruned ? plural(s.counts.pruned, "trial") : "none yet";
      $("pruning-note").textContent = epochs ? "Pruning saved about " + duration(saved) + " (" + plural(epochs, "epoch") + ")"
        : PRUNERS[s.pruning] + " pruner: a trial worse than the others at the same epoch stops early.";
    } else {
      $("pruning-value").textContent = "off";
      $("pruning-note").textContent = "Every trial runs all its epochs.";
    }
    facts(s);
  }

  function facts(s) {
    const fixed = Object.entries(s.params || {}).filter(([k]) => !["dataset", "architecture", "dataset_name"].includes(k))
      .map(([k, v]) => paramLabel(k).toLowerCase() + " " + formatParam(v)).join(", ");
    const searched = Object.entries(s.space || {}).map(([k, spec]) => paramLabel(k).toLowerCase() + " " + (spec.type === "choice"
      ? "in {" + spec.values.map(formatParam).join(", ") + "}"
      : formatParam(spec.low) + "–" + formatParam(spec.high) + (spec.type === "log_uniform" || spec.log ? " (log)" : ""))).join("; ");
    const rows = [
      ["Objective", (s.objective.label || s.objective.metric) + ", " + (s.objective.direction === "max" ? "highest" : "lowest") + " is best" +
        (s.objective.per_epoch ? "" : " (known when a trial ends)")],
      ["Searching", searched],
      ["Every trial", fixed || "the defaults"],
      ["Estimate", s.estimate && s.estimate.text ? s.estimate.text : null],
      ["Budget", s.budget_minutes ? s.budget_minutes + " min" : null],
      ["At once", plural(s.parallel, "trial") + " · " + s.queue + " queue"],
      ["Started", new Date(s.created_at).toLocaleString()],
      ["Ended", s.finished_at ? new Date(s.finished_at).toLocaleString() : null],
    ].filter(([, v]) => v);
    $("sweep-facts").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  }

  /* ---------------- actions ---------------- */

  function drawActions(s) {
    $("cancel-form").hidden = s.status !== "running";
    const promote = $("promote-form");
    promote.querySelector("button").disabled = !s.best;
    promote.title = s.best ? "" : "Once a trial has finished with a score";
    const epochs = $("promote-epochs");
    if (!epochs.dataset.touched) {
      const base = Number(s.params.epochs) || (s.best ? Number(s.trials.find(t => t.job === s.best.job).epochs) : 0);
      if (base) epochs.value = Math.min(1000, base * 2);
      else epochs.placeholder = "twice the trial's";
    }
    const finetune = $("finetune-form");
    if (finetune) finetune.querySelector("button").disabled = !s.best;
    const promoted = s.promoted || [];
    $("promoted").hidden = !promoted.length;
    $("promoted-list").replaceChildren(...promoted.map(p => el("li", { "data-job": p.job },
      el("a", { href: "/jobs/" + p.job + "/" }, "Job #" + p.job), " ", badge(p.status),
      p.test_accuracy !== null && p.test_accuracy !== undefined ? el("span", { class: "small" }, " test accuracy " + formatValue("test_accuracy", p.test_accuracy)) : null,
      p.note ? el("span", { class: "small muted promoted-note" }, p.note) : null)));
  }

  function result(kind, ...parts) {
    const box = $("action-result");
    box.className = "action-result " + (kind === "ok" ? "alert alert-success" : "alert alert-error");
    box.replaceChildren(...parts);
    box.hidden = false;
  }

  async function post(path, body) {
    try {
      return { ok: true, data: await VL.api(url + path + "/", { method: "POST", json: body || {} }) || {} };
    } catch (err) {
      return { ok: false, sentence: err.message };
    }
  }

  function busy(form, on) { form.querySelectorAll("button, input").forEach(n => { n.disabled = on; }); }

  function action(formId, path, body, onDone) {
    const form = $(formId);
    if (!form) return;
    form.addEventListener("submit", async event => {
      event.preventDefault();
      busy(form, true);
      const answer = await post(path, body());
      busy(form, false);
      if (!answer.ok) result("error", answer.sentence);
      else onDone(answer.data);
      if (state.data) drawActions(state.data);
      refresh();
    });
  }

  action("cancel-form", "cancel", () => ({}), data => {
    result("ok", "Sweep cancelled: no new trial starts, and the running ones stop.");
    render(data);
  });
  action("extend-form", "extend", () => ({ trials: Number($("extend-trials").value) }), data => {
    result("ok", "Added " + plural(Number($("extend-trials").value), "trial") + "; the search learns from the ones it has run.");
    render(data);
  });
  const promoted = jobs => {
    result("ok", "Started ", ...jobs.flatMap((j, i) => [i ? ", " : "", el("a", { href: "/jobs/" + j.id + "/", "data-testid": "promoted-job" }, "job #" + j.id)]),
      " (" + jobs.map(j => j.queue).filter((q, i, a) => a.indexOf(q) === i).join(", ") + " queue).");
  };
  action("promote-form", "promote", () => {
    const epochs = $("promote-epochs").value;
    return { top: 1, epochs: epochs ? Number(epochs) : null, finetune: false };
  }, data => promoted(data.jobs || []));
  action("finetune-form", "promote", () => ({ top: Number($("finetune-top").value) || 1, finetune: true }), data => promoted(data.jobs || []));
  $("promote-epochs").addEventListener("input", event => { event.target.dataset.touched = "1"; });

  /* ---------------- the trials ---------------- */

  function columns(s) {
    const names = Object.keys(s.space || {});
    const metric = s.objective.metric;
    return [
      { key: "number", title: "#", num: true, value: t => t.number, cell: t => el("td", { class: "num" }, String(t.number),
        s.best && t.job === s.best.job ? el("span", { class: "tag tag-best" }, "best") : null) },
      { key: "status", title: "Status", value: t => t.status, cell: trialStatus },
      ...names.map(name => ({ key: "p:" + name, title: paramLabel(name), num: true, value: t => t.params[name],
        cell: t => el("td", { class: "num", "data-param": name }, formatParam(t.params[name])) })),
      { key: "value", title: s.objective.label || metric, num: true, value: t => t.value, best: s.objective.direction,
        cell: t => el("td", { class: "num value-cell", "data-key": "value" }, formatValue(metric, t.value)) },
      { key: "epochs", title: "Epochs", num: true, value: t => t.epochs_run,
        cell: t => el("td", { class: "num" }, (t.epochs_run || (VL.ACTIVE.includes(t.status) ? "…" : 0)) + " / " + (t.epochs || "—")) },
      { key: "duration", title: "Duration", num: true, value: t => t.duration_seconds, cell: t => el("td", { class: "num" }, duration(t.duration_seconds)) },
      { key: "job", title: "Job", num: true, value: t => t.job, cell: t => el("td", {}, el("a", { href: "/jobs/" + t.job + "/" }, "#" + t.job)) },
    ];
  }

  function trialStatus(t) {
    const active = VL.ACTIVE.includes(t.status);
    const note = t.status === "failed" ? (t.error || t.message) : (t.status === "pruned" || active) ? t.message : null;
    // A pruned trial's message is long ("Pruned after epoch 2 of 6: its validation accuracy ... was behind ..."):
    // the row says when, the tooltip and the job page say why.
    const shown = note && t.status === "pruned" ? note.split(":")[0] : note;
    return el("td", { class: "status-cell" }, badge(t.status), active ? VL.progressBar(t.progress) : null,
      shown ? el("div", { class: "small muted trial-note", title: note }, shown.length > 80 ? shown.slice(0, 79) + "…" : shown) : null);
  }

  function compare(a, b) {
    const missing = v => v === null || v === undefined;
    if (missing(a) && missing(b)) return 0;
    if (missing(a)) return 1;
    if (missing(b)) return -1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b));
  }

  function sortBy(col) {
    if (state.sort.key === col.key) state.sort.dir = -state.sort.dir;
    else state.sort = { key: col.key, dir: col.best === "max" ? -1 : 1 };  // a score: the best first
    state.tableSignature = "";
    drawTable(state.data);
  }

  function drawTable(s) {
    const signature = JSON.stringify([s.trials, s.best, state.sort]);
    if (signature === state.tableSignature) return;
    state.tableSignature = signature;
    const cols = columns(s);
    const col = cols.find(c => c.key === state.sort.key) || cols[0];
    const table = $("trials-table");
    const head = el("tr", {}, ...cols.map(c => {
      const sorted = c.key === col.key;
      const button = el("button", { type: "button", class: "sort-button", "data-sort": c.key },
        c.title, el("span", { class: "sort-mark", "aria-hidden": "true" }, sorted ? (state.sort.dir > 0 ? " ▲" : " ▼") : ""));
      button.addEventListener("click", () => sortBy(c));
      return el("th", { class: c.num ? "num" : null, scope: "col",
        "aria-sort": sorted ? (state.sort.dir > 0 ? "ascending" : "descending") : null }, button);
    }));
    table.querySelector("thead").replaceChildren(head);
    const rows = s.trials.slice().sort((a, b) => {
      const va = col.value(a), vb = col.value(b);
      const missing = v => v === null || v === undefined;
      if (missing(va) !== missing(vb)) return missing(va) ? 1 : -1;  // no value: last either way
      return state.sort.dir * compare(va, vb) || a.number - b.number;
    });
    table.querySelector("tbody").replaceChildren(...(rows.length ? rows.map(t => el("tr", {
      "data-trial": t.number, "data-job": t.job, "data-status": t.status,
      class: [s.best && t.job === s.best.job ? "best" : null, t.status === "pruned" ? "pruned" : null].filter(Boolean).join(" ") || null,
    }, ...cols.map(c => c.cell(t)))) : [el("tr", { class: "empty" }, el("td", { colspan: cols.length }, "No trial has started yet."))]));
  }

  /* ---------------- polling ---------------- */

  function render(s) {
    state.data = s;
    $("sweep-problem").hidden = true;
    drawHeader(s);
    drawActions(s);
    drawTable(s);
    VL.sweepCharts.draw(s, meta);
  }

  function live(s) {
    return s.status === "running" || (s.promoted || []).some(p => VL.ACTIVE.includes(p.status));
  }

  async function tick() {
    clearTimeout(state.timer);
    try {
      const s = await VL.api(url, { reloadWhenLoggedOut: true });
      render(s);
      if (!live(s)) return;  // ended: nothing more will change by itself
    } catch (err) {
      $("sweep-problem").textContent = "Could not reach the server to update this page; trying again.";
      $("sweep-problem").hidden = false;
    }
    state.timer = setTimeout(tick, document.hidden ? HIDDEN_EVERY : EVERY);
  }

  /* After an action: look again now, and keep looking while something runs. */
  function refresh() { clearTimeout(state.timer); state.timer = setTimeout(tick, 300); }

  document.addEventListener("visibilitychange", () => { if (!document.hidden && state.data && live(state.data)) refresh(); });
  tick();
})();

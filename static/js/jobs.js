/* The jobs page: a page of runs from GET /api/jobs/ (filtered, searched, sorted, paged), each with its
   summary numbers, tags, project and a sparkline of its validation curve; tick 2 to 10 runs to
   compare them. The filters live in the address bar, so a filtered view can be bookmarked and
   survives a reload; the rows refresh by themselves (fast while a run on the page is active). */
(function () {
  "use strict";
  const { el, badge, progressBar, duration, ago } = window.VL;
  const $ = id => document.getElementById(id);

  const card = $("runs");
  const form = $("run-filters");
  const table = $("jobs-table");
  const tbody = table.querySelector("tbody");
  const problem = $("list-problem");
  const countLine = $("runs-count");
  const pager = $("pager");
  const compareLink = $("compare-link");
  const compareNote = $("compare-note");
  const compareClear = $("compare-clear");
  const clearButton = $("clear-filters");
  const queueProblem = $("queue-problem");
  const launchButton = document.querySelector("#launch-system-check button");
  const sweepNote = $("sweep-filter");

  // `sweep` has no menu: a sweep's page links here with it (a hidden field keeps it with the others).
  const FILTERS = ["q", "project", "kind", "status", "dataset", "architecture", "tag", "sweep"];
  const DEFAULTS = { ordering: "-created_at", page: "1", page_size: "50" };
  const COMPARE_MIN = Number(card.dataset.compareMin) || 2;
  const COMPARE_MAX = Number(card.dataset.compareMax) || 10;
  const ACTIVE_EVERY = 1500, IDLE_EVERY = 10000, HIDDEN_EVERY = 30000;

  /* ---- the query: the address bar is the truth; the form shows it ---- */

  function currentQuery() {
    const params = new URLSearchParams(window.location.search);
    const query = {};
    [...FILTERS, ...Object.keys(DEFAULTS)].forEach(name => { query[name] = (params.get(name) || "").trim(); });
    Object.entries(DEFAULTS).forEach(([name, value]) => { if (!query[name]) query[name] = value; });
    return query;
  }

  function queryString(query, forApi) {
    const params = new URLSearchParams();
    Object.entries(query).forEach(([name, value]) => {
      if (value && (forApi || value !== DEFAULTS[name])) params.set(name, value);
    });
    return params.toString();
  }

  function fromForm(page) {
    const query = {};
    [...FILTERS, "ordering", "page_size"].forEach(name => { query[name] = (form.elements[name].value || "").trim(); });
    query.page = page || "1";
    Object.entries(DEFAULTS).forEach(([name, value]) => { if (!query[name]) query[name] = value; });
    return query;
  }

  function showInForm(query) {
    [...FILTERS, "ordering", "page_size"].forEach(name => {
      const field = form.elements[name];
      let value = query[name] || "";
      if (field.tagName === "SELECT" && value && ![...field.options].some(o => o.value === value)) {
        // A project the address names by name ("Vision"), the menu by id; or a value not in the menu.
        const named = [...field.options].find(o => o.value && o.text.replace(/ \(\d+\)$/, "") === value);
        if (named) value = named.value;
        else field.append(el("option", { value }, value));
      }
      if (field !== document.activeElement || field.tagName === "SELECT") field.value = value;
    });
    clearButton.hidden = !filtered(query);
    sweepNote.hidden = !query.sweep;
    if (query.sweep) sweepNote.querySelector("a").href = "/sweeps/" + encodeURIComponent(query.sweep) + "/";
    if (query.sweep) sweepNote.querySelector("a").textContent = "sweep #" + query.sweep;
  }

  function filtered(query) { return FILTERS.some(name => query[name]); }

  function go(query, how) {
    const search = queryString(query, false);
    const url = window.location.pathname + (search ? "?" + search : "");
    if (url !== window.location.pathname + window.location.search) window.history[how + "State"](null, "", url);
    showInForm(query);
    load(true);
  }

  let typing = null;
  form.addEventListener("submit", event => { event.preventDefault(); clearTimeout(typing); go(fromForm(), "push"); });
  form.addEventListener("change", event => {
    if (event.target.name === "q") return;  // typed: handled as input
    go(fromForm(), "push");
  });
  form.elements.q.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => go(fromForm(), "replace"), 300);
  });
  form.elements.page_size.addEventListener("change", () => go(fromForm(), "push"));  // in the pager, outside the form
  clearButton.addEventListener("click", () => clearFilters());
  window.addEventListener("popstate", () => { showInForm(currentQuery()); load(true); });

  function clearFilters() {
    FILTERS.forEach(name => { form.elements[name].value = ""; });
    go(fromForm(), "push");
    form.elements.q.focus();
  }

  $("page-prev").addEventListener("click", () => turnPage(-1));
  $("page-next").addEventListener("click", () => turnPage(1));
  function turnPage(step) {
    const query = currentQuery();
    query.page = String(Math.max(1, Number(query.page) + step));
    go(query, "push");
    card.scrollIntoView({ block: "start", behavior: "smooth" });
  }

  /* ---- ticking runs to compare ---- */

  const picked = new Map();  // id -> "Training #12", in the order they were ticked

  function updateCompare() {
    const ids = [...picked.keys()];
    const ok = ids.length >= COMPARE_MIN && ids.length <= COMPARE_MAX;
    if (ok) {
      compareLink.href = "/compare/?jobs=" + ids.join(",");
      compareLink.removeAttribute("aria-disabled");
    } else {
      compareLink.removeAttribute("href");
      compareLink.setAttribute("aria-disabled", "true");
    }
    compareLink.textContent = ids.length ? "Compare " + ids.length : "Compare";
    compareClear.hidden = !ids.length;
    deletePicked.hidden = !ids.length;
    deletePicked.textContent = ids.length ? "Delete " + ids.length : "Delete selected";
    compareNote.textContent = !ids.length ? `Tick ${COMPARE_MIN} to ${COMPARE_MAX} runs to compare them.`
      : ids.length < COMPARE_MIN ? `${[...picked.values()].join(", ")} ticked: tick at least one more.`
      : ids.length > COMPARE_MAX ? `${ids.length} runs ticked: compare at most ${COMPARE_MAX}; untick some.`
      : `${ids.length} runs ticked.`;
  }

  function untickAll() {
    picked.clear();
    tbody.querySelectorAll("input.pick").forEach(box => { box.checked = false; });
    tbody.querySelectorAll("tr.picked").forEach(tr => tr.classList.remove("picked"));
    updateCompare();
  }
  compareClear.addEventListener("click", untickAll);
  tbody.addEventListener("change", event => {
    const box = event.target;
    if (!box.classList.contains("pick")) return;
    const id = Number(box.value);
    if (box.checked) picked.set(id, box.dataset.title); else picked.delete(id);
    box.closest("tr").classList.toggle("picked", box.checked);
    updateCompare();
  });

  /* ---- deleting the ticked runs: all or none, after a confirmation that says what goes ---- */

  const deletePicked = $("delete-picked");
  const deleteDone = $("delete-done");
  const deleteProblem = $("delete-problem");

  function deleteSentence(ids) {
    const boxes = ids.map(id => tbody.querySelector(`input.pick[value="${id}"]`)).filter(Boolean);
    const models = boxes.filter(box => box.dataset.model).length;
    const runs = ids.length === 1 ? "this run" : "these " + ids.length + " runs";
    const active = boxes.filter(box => box.dataset.active).map(box => box.dataset.title);
    return (active.length ? active.join(", ") + (active.length === 1 ? " is" : " are") + " still queued or running: cancel "
        + (active.length === 1 ? "it" : "them") + " first, or the delete is refused. " : "")
      + "Deleting " + runs + " removes " + (ids.length === 1 ? "its" : "their") + " records, metrics and logs"
      + (models ? ", and the " + (models === 1 ? "model" : models + " models") + " they trained with " + (models === 1 ? "its" : "their")
        + " files and any public demo link" : "")
      + ". This cannot be undone.";
  }

  deletePicked.addEventListener("click", async () => {
    const ids = [...picked.keys()];
    if (!ids.length) return;
    const ok = await VL.confirm({ title: ids.length === 1 ? "Delete " + picked.get(ids[0]) + "?" : "Delete " + ids.length + " runs?",
      text: deleteSentence(ids), action: ids.length === 1 ? "Delete run" : "Delete " + ids.length + " runs" });
    if (!ok) return;
    deletePicked.disabled = true;
    let problem = null;
    try {
      await VL.api("/api/jobs/delete/", { method: "POST", json: { ids } });
    } catch (err) {
      problem = err.message;
    }
    deletePicked.disabled = false;
    if (problem) {
      deleteDone.hidden = true;
      deleteProblem.textContent = problem;
      deleteProblem.hidden = false;
      return;
    }
    deleteProblem.hidden = true;
    deleteDone.textContent = "Deleted " + (ids.length === 1 ? picked.get(ids[0]) : ids.length + " runs") + ".";
    deleteDone.hidden = false;
    untickAll();
    load(true);
  });

  /* ---- drawing a row ---- */

  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    Object.entries(attrs || {}).forEach(([key, value]) => node.setAttribute(key, value));
    return node;
  }

  const percent = VL.percent;
  function fixed(x) { return Number(x).toFixed(3); }
  const METRICS = { val_accuracy: ["Validation accuracy", percent], val_loss: ["Validation loss", fixed] };

  /* An inline SVG of the run's validation curve (at most 40 points), its best epoch a dot. */
  function sparkline(job) {
    const points = (job.curve && job.curve.points) || [];
    if (!points.length) return el("span", { class: "muted small" }, job.status === "running" ? "drawn when it ends" : "—");
    const [title, format] = METRICS[job.curve.metric] || [job.curve.metric, fixed];
    const W = 120, H = 34, PAD = 3;
    const xs = points.map(p => p[0]), ys = points.map(p => p[1]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
    const x = v => PAD + (x1 === x0 ? (W - 2 * PAD) / 2 : (v - x0) / (x1 - x0) * (W - 2 * PAD));
    const y = v => PAD + (y1 === y0 ? (H - 2 * PAD) / 2 : (1 - (v - y0) / (y1 - y0)) * (H - 2 * PAD));
    const best = points.find(p => p[0] === job.best_epoch)
      || points.reduce((a, b) => (job.curve.metric === "val_loss" ? (b[1] < a[1] ? b : a) : (b[1] > a[1] ? b : a)));
    const label = `${title} over ${job.epochs_run || points.length} epochs; best ${format(best[1])} at epoch ${best[0]}`;
    const chart = svg("svg", { class: "sparkline", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img",
      "aria-label": label, "data-metric": job.curve.metric });
    const tip = svg("title");
    tip.textContent = label;
    chart.append(tip);
    if (points.length > 1) {
      chart.append(svg("polyline", { class: "spark-line", fill: "none",
        points: points.map(p => x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1)).join(" ") }));
    }
    chart.append(svg("circle", { class: "spark-best", cx: x(best[0]).toFixed(1), cy: y(best[1]).toFixed(1), r: 2.8,
      "data-epoch": best[0] }));
    return el("div", { class: "spark" }, chart,
      el("div", { class: "spark-note" }, (job.curve.metric === "val_loss" ? "val loss " : "val acc ") + format(best[1]) + " · ep " + best[0]));
  }

  function numbers(job) {
    const shown = [];
    if (job.test_accuracy !== null) shown.push(["Test", percent(job.test_accuracy), "test"]);
    if (job.best_val_accuracy !== null) shown.push(["Best val", percent(job.best_val_accuracy), "val"]);
    else if (job.best_val_loss !== null) shown.push(["Val loss", fixed(job.best_val_loss), "loss"]);
    if (job.bleu4 !== null) shown.push(["BLEU-4", fixed(job.bleu4), "bleu4"]);
    if (job.epochs_run) {
      shown.push(job.best_epoch ? ["Best epoch", job.best_epoch + " of " + job.epochs_run, "epochs"]
        : ["Epochs", String(job.epochs_run), "epochs"]);
    }
    if (!shown.length) return el("span", { class: "muted" }, "—");
    return el("dl", { class: "run-numbers" }, ...shown.flatMap(([name, value, key]) =>
      [el("dt", {}, name), el("dd", { "data-number": key }, value)]));
  }

  function runCell(job) {
    const title = job.kind_label + " #" + job.id;
    const about = [job.params && job.params.dataset_name, job.params && job.params.architecture].filter(Boolean).join(" · ");
    const labels = el("div", { class: "run-labels" },
      job.project ? el("span", { class: "chip run-project", title: "Project" }, job.project) : null,
      ...(job.tags || []).map(tag => el("span", { class: "tag" }, tag)));
    return el("td", { class: "run-cell" },
      el("a", { class: "run-link", href: "/jobs/" + job.id + "/" }, title),
      about ? el("div", { class: "small muted run-about" }, about) : null,
      labels.childNodes.length ? labels : null,
      job.note ? el("div", { class: "small run-note", title: job.note }, job.note.length > 90 ? job.note.slice(0, 89) + "…" : job.note) : null);
  }

  function statusCell(job) {
    const active = VL.ACTIVE.includes(job.status);
    return el("td", { class: "status-cell" }, badge(job.status),
      active ? progressBar(job.progress) : null,
      job.error ? el("div", { class: "small run-error" }, "Failed: " + job.error)
        : (active && job.message) ? el("div", { class: "small muted" }, job.message)
        // A sweep's pruned trial: when it stopped here, why in the tooltip and on its page.
        : (job.status === "pruned" && job.message) ? el("div", { class: "small muted", title: job.message }, job.message.split(":")[0]) : null,
      job.worker ? el("div", { class: "small muted" }, job.worker) : null);
  }

  function row(job) {
    const title = job.kind_label + " #" + job.id;
    const box = el("input", { type: "checkbox", class: "pick", value: job.id, "data-title": title,
      "data-model": job.model || null, "data-active": VL.ACTIVE.includes(job.status) ? "1" : null,
      "aria-label": "Tick " + title + " to compare or delete" });
    box.checked = picked.has(job.id);
    return el("tr", { "data-job": job.id, class: picked.has(job.id) ? "picked" : null },
      el("td", { class: "pick-col" }, box),
      runCell(job),
      statusCell(job),
      el("td", { class: "curve-cell", "data-label": "Validation curve" }, sparkline(job)),
      el("td", { class: "numbers-cell", "data-label": "Results" }, numbers(job)),
      el("td", { class: "num", "data-label": "Duration" }, duration(job.duration_seconds)),
      el("td", { title: new Date(job.created_at).toLocaleString(), "data-label": "Created" }, ago(job.created_at)));
  }

  function emptyRow(narrowed) {
    const cell = el("td", { colspan: 7 });
    if (narrowed) {
      const clear = el("button", { type: "button", class: "btn btn-small" }, "Clear filters");
      clear.addEventListener("click", clearFilters);
      cell.append(el("p", { class: "empty-title" }, "No runs match these filters"),
        el("p", { class: "small" }, "Change them, or clear them to see every run."), clear);
    } else {
      cell.append("No jobs yet. Run a system check to see a worker at work.");
    }
    return el("tr", { class: "empty" }, cell);
  }

  function render(page, query) {
    const size = Number(query.page_size), number = Number(query.page);
    const pages = Math.max(1, Math.ceil(page.count / size));
    countLine.textContent = page.count.toLocaleString() + (page.count === 1 ? " run" : " runs") + (filtered(query) ? " match" + (page.count === 1 ? "es" : "") : "");
    tbody.replaceChildren(...(page.results.length ? page.results.map(row) : [emptyRow(filtered(query))]));
    pager.hidden = number === 1 && page.count <= 25;  // one short page: nothing to turn
    const first = (number - 1) * size + 1;
    $("page-where").textContent = page.count ? `Page ${number} of ${pages} · runs ${first.toLocaleString()}–${(first + page.results.length - 1).toLocaleString()} of ${page.count.toLocaleString()}` : "";
    $("page-prev").disabled = !page.previous;
    $("page-next").disabled = !page.next;
  }

  /* ---- loading: one request at a time, the latest wins ---- */

  let timer = null, controller = null, lastText = null;

  async function load(changed) {
    clearTimeout(timer);
    if (controller) controller.abort();
    controller = new AbortController();
    const mine = controller;
    const query = currentQuery();
    if (changed) table.classList.add("loading");
    let active = false;
    try {
      const page = await VL.api("/api/jobs/?" + queryString(query, true), { signal: mine.signal, reloadWhenLoggedOut: true });
      if (mine !== controller) return;
      problem.hidden = true;
      active = page.results.some(job => VL.ACTIVE.includes(job.status));
      const text = JSON.stringify(page);
      if (text !== lastText || changed) render(page, query);
      lastText = text;
    } catch (err) {
      if (err.name === "AbortError") return;
      if (err.status === 404 && query.page !== "1") {  // past the last page (runs went away): the first
        query.page = "1";
        window.history.replaceState(null, "", window.location.pathname + "?" + queryString(query, false));
        load(true);
        return;
      }
      if (mine !== controller) return;
      if (err.status === 400) {
        problem.textContent = (err.data && err.data.detail) || "These filters cannot be used.";
        problem.hidden = false;
        countLine.textContent = "";
        tbody.replaceChildren(emptyRow(true));
        pager.hidden = true;
        lastText = null;
      }
      /* otherwise keep the last table; try again later */
    }
    if (mine !== controller) return;
    table.classList.remove("loading");
    timer = setTimeout(() => load(false), document.hidden ? HIDDEN_EVERY : active ? ACTIVE_EVERY : IDLE_EVERY);
  }

  document.addEventListener("visibilitychange", () => { if (!document.hidden) load(false); });
  showInForm(currentQuery());
  updateCompare();
  load(true);

  VL.poll("/api/queue-status/", function (status) {
    queueProblem.hidden = status.ok;
    if (launchButton) launchButton.disabled = !status.ok;
  }, { interval: 5000, hiddenInterval: 30000 });
})();

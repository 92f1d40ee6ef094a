/* A trained classifier's exports. On the model page: one row per format (the server draws the five
   rows, their snippets and the exports so far); Export starts a job (POST /api/models/<id>/exports/),
   and while one is queued or running the rows are fetched again every 1.5 s, with each running job's
   live progress from /api/jobs/<id>/, and redrawn in place (an open snippet stays open). A failed
   export, or one that strays from the original, is red with its reason; the latter's download says so.
   VL.exportFigures formats one export's figures, for this card and for an export job's page. */
(function () {
  "use strict";
  const { el, bytes } = window.VL;
  const $ = id => document.getElementById(id);
  const EVERY = 1500, HIDDEN_EVERY = 10000;
  const STATUS_WORDS = { out_of_tolerance: "Out of tolerance" };

  const known = x => x !== null && x !== undefined && !Number.isNaN(x);
  const pct = VL.percent;

  /* The change in test accuracy, in percentage points: "+0.3", "−1.2", "±0.0". */
  function points(change) {
    if (!known(change)) return "";
    const rounded = Math.round(change * 1000) / 10;
    if (rounded === 0) return "±0.0";
    return (rounded > 0 ? "+" : "−") + Math.abs(rounded).toFixed(1);
  }

  function probability(x) {
    if (!known(x)) return "—";
    if (x === 0) return "0";
    if (x < 0.001) return x.toExponential(1);
    return x.toPrecision(2);
  }

  function ms(x) {
    if (!known(x)) return "—";
    return (x < 0.1 ? x.toFixed(3) : x < 10 ? x.toFixed(2) : x.toFixed(1)) + " ms";
  }

  /* {size, accuracy, agreement, prob, latency}: each {text, note, title} for one export's row or job. */
  function exportFigures(row) {
    const images = known(row.images) ? row.images.toLocaleString() + " image" + (row.images === 1 ? "" : "s") : "the images";
    const change = points(row.accuracy_change);
    return {
      size: { text: known(row.size) ? bytes(row.size) : "—", title: known(row.size) ? row.size.toLocaleString() + " bytes" : null },
      accuracy: {
        text: known(row.test_accuracy) ? pct(row.test_accuracy) + (change ? " (" + change + ")" : "") : "—",
        note: known(row.original_accuracy) ? "original " + pct(row.original_accuracy) : null,
        change,
        title: known(row.test_accuracy) ? "Test accuracy on " + images + "; the change is in percentage points against the original's " +
          pct(row.original_accuracy) : null,
      },
      agreement: {
        text: pct(row.agreement),
        note: known(row.images) ? "of " + images : null,
        title: known(row.agreement) ? "Gives the original's top class on " + pct(row.agreement) + " of " + images : null,
      },
      prob: { text: probability(row.max_prob_diff),
        title: known(row.max_prob_diff) ? "The largest difference in any class probability against the original, over " + images : null },
      latency: {
        text: ms(row.latency_ms),
        note: known(row.original_latency_ms) ? "original " + ms(row.original_latency_ms) : null,
        title: known(row.latency_ms) ? "Median time for one image, in its own runtime on the worker; the original Keras model: " +
          ms(row.original_latency_ms) : null,
      },
    };
  }

  function statusBadge(status) {
    return el("span", { class: "badge badge-" + status, "data-status": status }, STATUS_WORDS[status] || status);
  }

  window.VL.exportFigures = exportFigures;
  window.VL.exportBadge = statusBadge;

  /* ---------------- the model page's card ---------------- */

  const table = $("exports-table");
  if (!table) return;
  const modelId = VL.json("model-id");
  const listUrl = "/api/models/" + modelId + "/exports/";
  const rows = {};  // format -> the API's row
  const refusals = {};  // format -> the sentence a refused POST answered
  (VL.json("export-rows") || []).forEach(row => { rows[row.format] = row; });
  let timer = null;
  let fetching = false;

  const active = row => Boolean(row) && VL.ACTIVE.includes(row.status);
  const anyActive = () => Object.values(rows).some(active);

  function figureCell(cell, figure) {
    cell.replaceChildren(...[figure.text, figure.note ? el("span", { class: "cell-sub" }, figure.note) : null].filter(Boolean));
    if (figure.title) cell.title = figure.title;
    else cell.removeAttribute("title");
  }

  function draw(fmt) {
    const body = table.querySelector('tbody[data-format="' + fmt + '"]');
    if (!body) return;
    const row = rows[fmt];
    const cell = name => body.querySelector('[data-cell="' + name + '"]');
    const status = row ? row.status : "none";
    body.dataset.status = status;
    const bad = status === "failed" || status === "out_of_tolerance";
    body.classList.toggle("export-bad", bad);

    // Status: a badge; live progress while it runs; the job's page once it ran.
    const statusCell = cell("status");
    if (!row) {
      statusCell.replaceChildren(el("span", { class: "muted" }, "not exported"));
    } else if (active(row)) {
      statusCell.replaceChildren(statusBadge(row.status), VL.progressBar(row.progress),
        el("span", { class: "cell-sub export-message", "aria-live": "polite" },
          row.message || (row.status === "queued" ? "Waiting for a worker" : "Starting")));
    } else {
      statusCell.replaceChildren(statusBadge(row.status),
        el("a", { class: "cell-sub", href: "/jobs/" + row.job + "/" }, "job #" + row.job));
    }

    // The figures, once it ran (an export that strays has them too: they say how far).
    const ran = row && (status === "succeeded" || status === "out_of_tolerance");
    const figures = ran ? exportFigures(row) : null;
    const blank = { text: "—" };
    figureCell(cell("size"), figures ? figures.size : blank);
    figureCell(cell("accuracy"), figures ? figures.accuracy : blank);
    figureCell(cell("agreement"), figures ? figures.agreement : blank);
    figureCell(cell("prob"), figures ? figures.prob : blank);
    figureCell(cell("latency"), figures ? figures.latency : blank);

    // Export (again) and the download, named for what it is.
    const actions = cell("actions");
    const button = actions.querySelector(".export-button");
    button.textContent = active(row) ? "Exporting…" : row ? "Export again" : "Export";
    button.disabled = active(row) || button.dataset.posting === "1" || button.hasAttribute("data-no-dataset");
    actions.querySelectorAll(".export-download").forEach(link => link.remove());
    if (row && row.download && ran) {
      const fine = status === "succeeded";
      actions.append(el("a", {
        class: "btn btn-small export-download " + (fine ? "btn-primary" : "btn-danger"), href: row.download, download: "",
        title: fine ? "The exported file" : "This export strays from the original beyond its tolerance: read why below before using it",
      }, fine ? "Download" : "Download anyway (strays from the original)"));
    }

    // Why it failed or strays, or why the server refused to start it.
    const problem = cell("problem");
    const sentence = refusals[fmt] || (bad ? row.error || (status === "failed" ? "The export failed." : "") : "") ||
      (status === "cancelled" ? "Cancelled before it finished: no file was kept." : "");
    problem.hidden = !sentence;
    problem.textContent = sentence;
    problem.classList.toggle("export-note", status === "cancelled" && !refusals[fmt]);
  }

  function drawAll() { table.querySelectorAll("tbody[data-format]").forEach(body => draw(body.dataset.format)); }

  function schedule() {
    clearTimeout(timer);
    timer = anyActive() ? setTimeout(refresh, document.hidden ? HIDDEN_EVERY : EVERY) : null;
  }

  const getJson = url => VL.api(url, { reloadWhenLoggedOut: true });

  async function refresh() {
    if (fetching) return;
    fetching = true;
    try {
      const list = await getJson(listUrl);
      // A running job's progress and message live in the job's own answer; the list may lag behind.
      await Promise.all(list.filter(active).map(async row => {
        try {
          const job = await getJson("/api/jobs/" + row.job + "/");
          if (!VL.ACTIVE.includes(job.status)) return;  // it just ended: the next list has its figures
          row.status = job.status;
          row.progress = job.progress;
          row.message = job.message;
        } catch (err) { /* the list's own figures will do */ }
      }));
      list.forEach(row => { rows[row.format] = row; });
      drawAll();
    } catch (err) {
      /* a missed poll is retried on the next one */
    } finally {
      fetching = false;
      schedule();
    }
  }

  async function startExport(button) {
    const fmt = button.dataset.format;
    delete refusals[fmt];
    button.dataset.posting = "1";
    draw(fmt);
    try {
      const job = await VL.api(listUrl, { method: "POST", json: { format: fmt },
        fallback: code => (code ? "The server refused to start this export (error " + code + ")." : undefined) });
      // The new job is the format's row from now on; its figures come with the list once it ran.
      rows[fmt] = { format: fmt, status: job.status || "queued", job: job.id, progress: job.progress || 0,
        message: job.message || "", error: "", download: null };
    } catch (err) {
      refusals[fmt] = err.data && Array.isArray(err.data.format) ? VL.errorText(err.data.format) : err.message;
    }
    delete button.dataset.posting;
    draw(fmt);
    schedule();
  }

  table.addEventListener("click", event => {
    const exportButton = event.target.closest(".export-button");
    if (exportButton && !exportButton.disabled) { startExport(exportButton); return; }
    const copy = event.target.closest(".snippet-copy");
    if (copy) copySnippet(copy);
  });

  async function copySnippet(button) {
    const code = button.parentElement.querySelector("pre code");
    let copied = false;
    try {
      await navigator.clipboard.writeText(code.textContent);
      copied = true;
    } catch (err) {
      const range = document.createRange();
      range.selectNodeContents(code);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
    }
    button.textContent = copied ? "Copied" : "Press Ctrl+C";
    clearTimeout(button.resetTimer);
    button.resetTimer = setTimeout(() => { button.textContent = "Copy"; }, 2000);
  }

  table.querySelectorAll(".export-button[disabled]").forEach(button => button.setAttribute("data-no-dataset", ""));
  document.addEventListener("visibilitychange", () => { if (!document.hidden && anyActive()) { clearTimeout(timer); refresh(); } });
  drawAll();
  if (anyActive()) refresh();  // the live progress of an export that was running when the page loaded
})();

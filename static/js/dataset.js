/* One dataset: live ingestion progress (then one reload so the server draws the result),
   the charts (class balance, image sizes, caption lengths) and the skipped-files report. */
(function () {
  "use strict";
  const { el, badge, bytes } = window.VL;
  const data = VL.json("dataset-data");
  const ACTIVE = ["pending", "ingesting"];
  const SKIPPED_SHOWN = 20;
  const ACCENT = "#4f46e5";
  const ACCENT_FILL = "rgba(79, 70, 229, 0.82)";
  const ACCENT_HOVER = "#4338ca";

  VL.localize();  // times in the reader's time zone, the archive's size, each run's test accuracy as the jobs list shows it

  // Deleting asks first: the form's data-confirm (static/js/confirm.js).

  /* ---- while a worker reads it ---- */

  function showProgress(d) {
    const status = document.getElementById("dataset-status");
    status.replaceWith(Object.assign(badge(d.status), { id: "dataset-status" }));
    document.getElementById("dataset-status").setAttribute("data-testid", "dataset-status");
    const job = d.job || { progress: 0, message: "" };
    const pct = Math.round(Math.max(0, Math.min(1, job.progress || 0)) * 100);
    const progress = document.getElementById("ingest-progress");
    if (!progress) return;
    progress.querySelector(".bar").style.width = pct + "%";
    progress.setAttribute("aria-valuenow", pct);
    document.getElementById("ingest-percent").textContent = pct + "%";
    document.getElementById("ingest-message").textContent = job.message || (d.status === "pending" ? "Waiting for a worker" : "Reading the archive");
  }

  if (ACTIVE.includes(data.status)) {
    VL.poll("/api/datasets/" + data.id + "/", d => {
      showProgress(d);
      // The finished page (charts, thumbnails, the error) is drawn by the server: load it once.
      if (!ACTIVE.includes(d.status)) window.location.reload();
    }, { interval: 1000, hiddenInterval: 10000, until: d => !ACTIVE.includes(d.status) });
    return;
  }
  if (data.status !== "ready") return;

  /* ---- charts ---- */

  const Chart = VL.styleCharts();
  const axis = VL.chartAxis;

  function barChart(canvas, labels, values, opts) {
    if (!Chart || !canvas) return null;
    const horizontal = opts.horizontal;
    const countAxis = axis(opts.valueTitle, { beginAtZero: true, ticks: { precision: 0 } });
    const labelAxis = axis(opts.labelTitle, { grid: { display: false }, ticks: { autoSkip: !horizontal } });
    return new Chart(canvas, {
      type: "bar",
      data: { labels, datasets: [{ label: opts.valueTitle, data: values, backgroundColor: ACCENT_FILL,
        hoverBackgroundColor: ACCENT_HOVER, borderColor: ACCENT, borderRadius: 4, maxBarThickness: 36,
        categoryPercentage: opts.gapless ? 0.96 : 0.8, barPercentage: opts.gapless ? 1 : 0.9 }] },
      options: {
        indexAxis: horizontal ? "y" : "x",
        responsive: true,
        maintainAspectRatio: false,
        animation: { duration: 400 },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: item => " " + item.formattedValue + " " + opts.unit } },
        },
        scales: horizontal ? { x: countAxis, y: labelAxis } : { x: labelAxis, y: countAxis },
      },
    });
  }

  /* Labels for a histogram whose bin i is [bins[i], bins[i+1]) in whole numbers. */
  function binLabels(hist, unit) {
    return hist.counts.map((_, i) => {
      const lo = hist.bins[i], hi = hist.bins[i + 1] - 1;
      return (hi <= lo ? String(lo) : lo + "–" + hi) + (unit ? " " + unit : "");
    });
  }

  function histogramChart(id, hist, opts) {
    const canvas = document.getElementById(id);
    if (!canvas) return;
    if (!hist || !hist.counts || !hist.counts.length) {
      canvas.parentElement.replaceWith(el("p", { class: "muted small" }, "No data."));
      return;
    }
    barChart(canvas, binLabels(hist, opts.binUnit), hist.counts, Object.assign({ gapless: true }, opts));
  }

  const stats = data.stats || {};

  if (data.kind === "classification") {
    const classes = data.classes || [];
    const box = document.getElementById("balance-box");
    if (box) box.style.height = Math.max(140, Math.min(2400, 48 + classes.length * 26)) + "px";
    barChart(document.getElementById("balance-chart"), classes.map(c => c.name), classes.map(c => c.count),
      { horizontal: true, labelTitle: "Class", valueTitle: "Images", unit: "images" });
  } else {
    const lengths = stats.caption_lengths;
    histogramChart("lengths-chart", lengths, { labelTitle: "Words per caption", valueTitle: "Captions", unit: "captions", binUnit: "" });
    const vocabulary = document.getElementById("vocabulary-size");
    if (vocabulary && stats.vocabulary_size !== undefined) vocabulary.textContent = stats.vocabulary_size.toLocaleString() + " words";
    const perImage = document.getElementById("captions-per-image");
    if (perImage) perImage.textContent = data.num_items ? (data.num_captions / data.num_items).toFixed(1) : "—";
  }

  const sizes = stats.image_sizes || {};
  histogramChart("widths-chart", sizes.widths, { labelTitle: "Width (px)", valueTitle: "Images", unit: "images", binUnit: "" });
  histogramChart("heights-chart", sizes.heights, { labelTitle: "Height (px)", valueTitle: "Images", unit: "images", binUnit: "" });

  function chips(id, counts) {
    const node = document.getElementById(id);
    if (!node) return;
    const entries = Object.entries(counts || {}).sort((a, b) => b[1] - a[1]);
    node.replaceChildren(...(entries.length ? entries.map(([name, n]) =>
      el("span", { class: "chip" }, el("strong", {}, name), " " + n.toLocaleString())) : [el("span", { class: "muted small" }, "—")]));
  }
  chips("modes", stats.modes);
  chips("formats", stats.formats);
  const stored = document.getElementById("stored-bytes");
  if (stored && stats.total_bytes !== undefined) {
    stored.textContent = bytes(stats.total_bytes) + " of images" +
      (stats.thumbnail_bytes ? " + " + bytes(stats.thumbnail_bytes) + " of thumbnails" : "");
  }

  /* ---- skipped files ---- */

  const skipped = data.skipped || [];
  const skippedBox = document.getElementById("skipped");
  function skippedRows(list) {
    return list.map(s => el("tr", {}, el("td", { class: "path" }, el("code", {}, s.path)), el("td", {}, s.reason)));
  }
  if (skippedBox) {
    if (!skipped.length) {
      skippedBox.replaceChildren(el("p", { class: "muted small" }, "None: every file in the archive was used."));
    } else {
      const tbody = el("tbody", {}, ...skippedRows(skipped.slice(0, SKIPPED_SHOWN)));
      const table = el("table", { class: "table skipped-table", id: "skipped-table" },
        el("thead", {}, el("tr", {}, el("th", {}, "File"), el("th", {}, "Why it was skipped"))), tbody);
      skippedBox.replaceChildren(el("p", { class: "muted small" },
        "These files were not used. Broken or unreadable files are skipped one by one; the rest of the dataset is fine."),
      el("div", { class: "table-scroll" }, table));
      if (skipped.length > SKIPPED_SHOWN) {
        const more = el("button", { type: "button", class: "btn", id: "skipped-more" }, "Show all " + skipped.length.toLocaleString());
        more.addEventListener("click", () => {
          tbody.append(...skippedRows(skipped.slice(SKIPPED_SHOWN)));
          more.remove();
        });
        skippedBox.append(el("div", { class: "more-row" }, more));
      }
    }
  }
})();

/* One job: status, progress, facts, parameters and result, live until the job ends.
   Training jobs also get their learning curves (updated in place on every poll), and once
   finished the evaluation: big numbers, confusion matrix, per-class scores, mistakes, layers.
   Caption training gets the same curves (next-word accuracy), then BLEU scores and a gallery
   of test photos; feature extraction (alone or as a training job's first step) its facts; an
   export how its file compares with the original (exports.js formats the figures) and the way
   back to the model. Any other kind shows its result as it is. Which of these a job gets is its
   kind's `view` (webapp/jobs/kinds/), written into the page: nothing here tests the kind. */
(function () {
  "use strict";
  const { el, badge, duration, bytes } = window.VL;
  const jobId = VL.json("job-id");
  const view = VL.json("job-view");

  function when(iso) { return iso ? new Date(iso).toLocaleString() : null; }

  function facts(node, pairs) {
    node.replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v === null || v === undefined || v === "" ? "—" : v)]));
  }

  function systemCheck(result) {
    const table = el("table", { class: "table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Device"), el("th", {}, "Name"), el("th", {}, "Memory"), el("th", {}, "Matrix multiply"))),
      el("tbody", {}, ...result.devices.map(d => el("tr", {},
        el("td", {}, d.type + (d.tf_name ? " (" + d.tf_name + ")" : "")),
        el("td", {}, d.name + (d.cores ? " · " + d.cores + " cores" : "")),
        el("td", {}, bytes(d.memory_bytes)),
        el("td", { class: "num", "data-testid": "gflops" }, d.gflops + " GFLOP/s"),
      ))));
    const env = el("dl", { class: "facts" });
    facts(env, [["Host", result.host], ["Platform", result.platform], ["Python", result.python],
      ["TensorFlow", result.tensorflow + (result.built_with_cuda ? " (CUDA build)" : " (CPU build)")],
      ["Keras", result.keras], ["NumPy", result.numpy]]);
    return el("div", {}, table, el("h3", {}, "Environment"), env);
  }

  /* ---------------- training ---------------- */

  const ACCENT = "#4f46e5";
  const ORANGE = "#f79009";
  const BEST = "#12b76a";
  const pct = (x, digits) => (x === null || x === undefined || Number.isNaN(x)) ? "—" : (x * 100).toFixed(digits === undefined ? 1 : digits) + "%";
  const num = x => (x === null || x === undefined) ? "—" : Number(x).toLocaleString();

  const Chart = VL.styleCharts();
  const axis = VL.chartAxis;

  /* A dashed vertical line through the best epoch (the index kept in chart.$best). */
  const bestLine = {
    id: "bestLine",
    afterDatasetsDraw(chart) {
      const index = chart.$best;
      if (index === null || index === undefined || index < 0) return;
      const x = chart.scales.x.getPixelForValue(index);
      const { top, bottom } = chart.chartArea;
      const ctx = chart.ctx;
      ctx.save();
      ctx.strokeStyle = BEST;
      ctx.lineWidth = 1.5;
      ctx.setLineDash([5, 4]);
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, bottom);
      ctx.stroke();
      ctx.restore();
    },
  };

  function lineChart(canvas, yTitle, isAccuracy) {
    const series = (label, color, extra) => Object.assign({ label, data: [], borderColor: color, backgroundColor: color,
      borderWidth: 2, pointRadius: 3, pointHoverRadius: 5, tension: 0.25, spanGaps: true }, extra);
    const yAxis = isAccuracy
      ? axis(yTitle, { suggestedMax: 1, ticks: { callback: v => Math.round(v * 100) + "%" } })
      : axis(yTitle, { beginAtZero: true });
    return new Chart(canvas, {
      type: "line",
      data: { labels: [], datasets: [
        series("Training", ACCENT),
        series("Validation", ORANGE, { borderDash: [6, 3] }),
        series("Best epoch", BEST, { showLine: false, pointStyle: "rectRot", pointRadius: 7, pointHoverRadius: 8, borderWidth: 2,
          backgroundColor: "#fff" }),
      ] },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { position: "bottom", labels: { usePointStyle: true, boxWidth: 8, boxHeight: 8 } },
          tooltip: {
            filter: item => item.datasetIndex !== 2,
            callbacks: {
              title: items => items.length ? "Epoch " + items[0].label : "",
              label: item => " " + item.dataset.label + ": " + (isAccuracy ? pct(item.parsed.y, 2) : item.parsed.y.toFixed(4)),
            },
          },
        },
        scales: { x: axis("Epoch", { grid: { display: false } }), y: yAxis },
      },
      plugins: [bestLine],
    });
  }

  const training = { charts: null, chartSignature: "", resultSignature: "" };

  /* The epoch to mark: the job's own once it ended, else the lowest validation loss so far. */
  function bestIndex(metrics, result) {
    if (result && result.best_epoch !== undefined && result.best_epoch !== null) {
      const i = metrics.findIndex(m => m.epoch === result.best_epoch);
      if (i >= 0) return i;
    }
    const key = metrics.some(m => typeof m.val_loss === "number") ? "val_loss" : "loss";
    let best = -1;
    metrics.forEach((m, i) => {
      if (typeof m[key] === "number" && (best < 0 || m[key] < metrics[best][key])) best = i;
    });
    return best;
  }

  /* The curves in a fixed frame: while the job runs the x-axis spans every planned epoch (params.epochs),
     so the lines grow into it instead of the axis stretching under them; once it has ended, the epochs it
     trained. No epoch yet: one sentence instead of two empty frames, and a job that ended without any
     epoch has no curves card at all. The best epoch is "best so far" until the job ends, then "best". */
  function updateCurves(job) {
    const metrics = job.metrics || [];
    const active = VL.ACTIVE.includes(job.status);
    document.getElementById("curves-card").hidden = !metrics.length && !active;
    document.getElementById("curves").hidden = !metrics.length;
    document.getElementById("curves-empty").hidden = metrics.length > 0;
    const best = bestIndex(metrics, job.result);
    const first = Math.min(1, ...metrics.map(m => m.epoch));
    const last = Math.max(first, ...metrics.map(m => m.epoch), active ? Number(job.params.epochs) || 0 : 0);
    const signature = JSON.stringify(metrics) + "|" + best + "|" + last + "|" + active;
    if (!metrics.length || signature === training.chartSignature || !Chart) return;
    training.chartSignature = signature;
    if (!training.charts) {
      training.charts = {
        loss: lineChart(document.getElementById("loss-chart"), "Loss", false),
        accuracy: lineChart(document.getElementById("accuracy-chart"), "Accuracy", true),
      };
    }
    const labels = Array.from({ length: last - first + 1 }, (_, i) => first + i);
    const value = v => (typeof v === "number" ? v : null);
    const byEpoch = key => labels.map(epoch => {
      const m = metrics.find(row => row.epoch === epoch);
      return m ? value(m[key]) : null;
    });
    const marked = best >= 0 ? metrics[best] : null;
    const bestAt = marked ? marked.epoch - first : -1;
    const bestName = active ? "Best so far" : "Best";
    [["loss", "loss", "val_loss"], ["accuracy", "accuracy", "val_accuracy"]].forEach(([name, train, val]) => {
      const chart = training.charts[name];
      const ds = chart.data.datasets;
      chart.data.labels = labels;
      ds[0].data = byEpoch(train);
      ds[1].data = byEpoch(val);
      const markValue = marked ? (value(marked[val]) ?? value(marked[train])) : null;
      ds[2].data = labels.map((_, i) => (i === bestAt ? markValue : null));
      ds[2].label = marked ? bestName + " (epoch " + marked.epoch + ")" : bestName;
      chart.$best = bestAt;
      chart.update("none");
    });
    const note = document.getElementById("curves-note");
    note.textContent = marked ? (active ? "best so far: epoch " : "best: epoch ") + marked.epoch +
      (typeof marked.val_accuracy === "number" ? " · validation accuracy " + pct(marked.val_accuracy) : "") +
      (typeof marked.val_loss === "number" ? " · validation loss " + marked.val_loss.toFixed(3) : "") : "";
  }

  /* A heat map: the shade of a cell is its share of the row (the true class). */
  function confusionMatrix(result) {
    const classes = result.classes || [];
    const matrix = result.confusion_matrix || [];
    const head = el("tr", {}, el("th", { class: "cm-corner", scope: "col" }, el("span", {}, "true ↓ predicted →")),
      ...classes.map(c => el("th", { class: "cm-col", scope: "col", title: "predicted " + c }, el("span", {}, c))));
    const rows = matrix.map((row, i) => {
      const total = row.reduce((a, b) => a + b, 0);
      return el("tr", {}, el("th", { class: "cm-row", scope: "row", title: "true " + classes[i] }, classes[i]),
        ...row.map((n, j) => {
          const share = total ? n / total : 0;
          const right = i === j;
          const alpha = n ? 0.08 + 0.92 * share : 0;
          const color = right ? "79, 70, 229" : "217, 45, 32";
          const style = "background: rgba(" + color + ", " + alpha.toFixed(3) + ");" + (alpha > 0.55 ? " color: #fff;" : "");
          return el("td", { class: "cm-cell" + (right ? " cm-diag" : "") + (n ? "" : " cm-zero"), style,
            title: "true " + classes[i] + ", predicted " + classes[j] + ": " + n + " image" + (n === 1 ? "" : "s") +
              (total ? " (" + pct(share) + " of " + classes[i] + ")" : "") }, n);
        }));
    });
    // Names wider than a cell stand on end above their column (cut at 9rem, whole in the title on hover).
    const long = classes.some(c => String(c).length > 3);
    return el("table", { class: "confusion" + (long ? " cm-long" : ""), id: "confusion-matrix", "data-testid": "confusion-matrix" },
      el("thead", {}, head), el("tbody", {}, ...rows));
  }

  function meter(value) {
    const width = Math.round(Math.max(0, Math.min(1, value || 0)) * 100);
    return el("span", { class: "meter", "aria-hidden": "true" }, el("span", { style: "width:" + width + "%" }));
  }

  function perClassTable(result) {
    const rows = result.per_class || [];
    const mean = key => rows.length ? rows.reduce((a, r) => a + (r[key] || 0), 0) / rows.length : null;
    const support = rows.reduce((a, r) => a + (r.support || 0), 0);
    return el("table", { class: "table per-class-table", id: "per-class-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Class"), el("th", { class: "num" }, "Precision"), el("th", { class: "num" }, "Recall"),
        el("th", { class: "num" }, "F1"), el("th", { class: "num" }, "Images"))),
      el("tbody", {}, ...rows.map(r => el("tr", {},
        el("td", { class: "class-name" }, r.name), el("td", { class: "num" }, pct(r.precision)), el("td", { class: "num" }, pct(r.recall)),
        el("td", { class: "num f1" }, meter(r.f1), el("span", { class: "f1-value" }, pct(r.f1))), el("td", { class: "num" }, num(r.support))))),
      el("tfoot", {}, el("tr", {}, el("th", {}, "Average"), el("td", { class: "num" }, pct(mean("precision"))),
        el("td", { class: "num" }, pct(mean("recall"))), el("td", { class: "num f1" }, meter(mean("f1")), el("span", { class: "f1-value" }, pct(mean("f1")))),
        el("td", { class: "num" }, num(support)))));
  }

  function mistakesGallery(job) {
    const mistakes = (job.result.mistakes || []);
    if (!mistakes.length) return el("p", { class: "muted" }, "None: the model got every " + (["validation", "val"].includes(job.result.evaluated_on) ? "validation" : "test") + " image right.");
    return el("div", { class: "mistakes" }, ...mistakes.map(m => {
      const url = job.dataset && m.item ? "/datasets/" + job.dataset + "/images/" + m.item : null;
      const picture = url
        ? el("a", { class: "thumb", href: url, target: "_blank", rel: "noopener", title: m.path }, el("img", { src: url, alt: m.path, loading: "lazy" }))
        : el("div", { class: "thumb thumb-missing", title: m.path }, el("span", { class: "small muted" }, "image not available"));
      const img = picture.querySelector("img");
      // Tiny images (8x8 digits) stay crisp when scaled up; photos are smoothed as usual.
      if (img) img.addEventListener("load", () => { if (img.naturalWidth < 64) img.classList.add("pixelated"); });
      return el("figure", { class: "mistake" }, picture,
        el("figcaption", {},
          el("span", { class: "mistake-line", title: "true " + m.true }, el("span", { class: "muted" }, "true "), el("strong", { class: "mistake-true" }, m.true)),
          el("span", { class: "mistake-line", title: "predicted " + m.predicted }, el("span", { class: "muted" }, "predicted "), el("strong", { class: "mistake-predicted" }, m.predicted)),
          el("span", { class: "mistake-confidence" }, pct(m.confidence, 0) + " sure")));
    }));
  }

  function environment(result) {
    const env = result.environment || {};
    const list = el("dl", { class: "facts" });
    facts(list, [["TensorFlow", env.tensorflow], ["Keras", env.keras], ["Python", env.python], ["NumPy", env.numpy], ["Host", env.host]]);
    return list;
  }

  // What a classifier's and a caption model's results both show: the layers with the environment, and
  // the features the run read. Drawn only when the result (or its model or dataset) changed since the
  // last draw; false when it did not, so the caller draws nothing either.
  function drawSharedResult(job) {
    const result = job.result;
    const signature = JSON.stringify(result) + "|" + job.model + "|" + job.dataset;
    if (signature === training.resultSignature) return false;
    training.resultSignature = signature;
    if (result.summary && result.summary.layers) {
      document.getElementById("summary-card").hidden = false;
      document.getElementById("model-summary").replaceChildren(VL.summaryTable(result.summary),
        el("h3", {}, "Environment"), environment(result));
    }
    if (result.features) drawFeatures(job, result.features);
    return true;
  }

  // The buttons under a headline: try, download and (caption models, whose headline has it) share the
  // model the run made, while it exists.
  function showModelActions(modelId) {
    document.getElementById("model-actions").hidden = !modelId;
    if (!modelId) return;
    document.getElementById("try-model").href = "/models/" + modelId + "/";
    const share = document.getElementById("share-model");
    if (share) share.href = "/models/" + modelId + "/#share-card";
    document.getElementById("download-model").href = "/api/models/" + modelId + "/download/";
  }

  function drawResult(job) {
    if (!drawSharedResult(job)) return;
    const result = job.result;
    if (result.test_accuracy === undefined) return; // not an evaluation yet

    const onVal = result.evaluated_on === "validation" || result.evaluated_on === "val";
    const split = (result.split_sizes || {})[onVal ? "val" : "test"];
    document.getElementById("train-headline").hidden = false;
    drawVerdict("train-headline", result.verdict);
    document.querySelector("#train-headline .big-number .big-label").textContent = onVal ? "Validation accuracy" : "Test accuracy";
    document.getElementById("test-accuracy").textContent = pct(result.test_accuracy);
    document.getElementById("test-accuracy-note").textContent = (split ? "on " + num(split) + " " : "on the ") +
      (onVal ? "validation images (the test split is empty)" : "held-out test images");
    document.getElementById("test-loss").textContent = typeof result.test_loss === "number" ? result.test_loss.toFixed(3) : "—";
    const epochs = (job.metrics || []).length;
    document.getElementById("best-epoch").textContent = result.best_epoch ?? "—";
    document.getElementById("best-epoch-note").textContent = (epochs ? "of " + epochs + " trained · " : "") + "lowest validation loss";
    // Runs from before result.model_epoch kept the best epoch's weights only with early stopping.
    showModelEpoch(result, result.model_epoch ?? (job.params.early_stopping ? result.best_epoch : epochs));
    document.getElementById("train-time").textContent = duration(result.train_seconds);
    document.getElementById("train-speed").textContent = result.images_per_second
      ? Math.round(result.images_per_second).toLocaleString() + " images/s on " + (job.device || "the worker") : "";

    showModelActions(job.model);  // result.model_id outlives a deleted model

    if (result.confusion_matrix && result.classes) {
      document.getElementById("eval-grid").hidden = false;
      document.getElementById("confusion").replaceChildren(confusionMatrix(result));
      document.getElementById("per-class").replaceChildren(perClassTable(result));
    }
    document.getElementById("mistakes-card").hidden = false;
    document.getElementById("mistakes").replaceChildren(mistakesGallery(job));
  }

  function renderTraining(job) {
    updateCurves(job);
    const resume = document.getElementById("resume-form");
    if (resume) resume.hidden = !job.resumable;  // only where it can help (webapp/jobs/resumable.py)
    const refusal = document.getElementById("resume-refusal");
    if (refusal) {
      refusal.textContent = job.resume_refusal || "";
      refusal.hidden = !job.resume_refusal;
    }
    if (job.result) (view === "captioner" ? drawCaptionResult : drawResult)(job);
  }

  /* ---------------- features ---------------- */

  const fixed = (x, digits) => (typeof x === "number" ? x.toFixed(digits) : "—");

  function weightsLabel(weights) {
    if (weights === "imagenet") return "ImageNet (pretrained)";
    if (weights === "random") return "random (not pretrained)";
    if (typeof weights === "string" && weights.startsWith("sha256:")) return "from the file (sha256 " + weights.slice(7, 19) + "…)";
    return weights || "—";
  }

  function backboneName(job, features) {
    return job.params.backbone_label || (features && (features.backbone_title || features.backbone)) || job.params.backbone || "—";
  }

  /* What the features step did: the backbone, the layer, the size, and whether it ran now or came from the cache. */
  /* Which epoch the saved (and evaluated) model comes from: the best one unless keeping it was turned off,
     so nobody reads "Best epoch 3" and assumes the download is epoch 3 when it is epoch 10. */
  function showModelEpoch(result, epoch) {
    const line = document.getElementById("model-epoch");
    if (!line) return;
    line.hidden = !epoch;
    line.textContent = !epoch ? "" : epoch === result.best_epoch
      ? "The saved model is from epoch " + epoch + " (the best validation loss)."
      : "The saved model is from the last epoch, " + epoch + ".";
  }

  /* The run's plain verdict above its big numbers (result.verdict, webapp/experiments/verdicts.py): a run that
     learned nothing says so before anyone reads its accuracy as a success, and its numbers turn grey. */
  function drawVerdict(cardId, verdict) {
    const card = document.getElementById(cardId);
    const box = card.querySelector('[data-role="verdict"]');
    if (!verdict) { box.hidden = true; return; }
    box.hidden = false;
    box.dataset.level = verdict.level;
    box.querySelector(".verdict-headline").textContent = verdict.headline;
    box.querySelector(".verdict-advice").textContent = verdict.advice || "";
    card.classList.toggle("learned-nothing", verdict.level === "bad");
  }

  function drawFeatures(job, f) {
    const card = document.getElementById("features-card");
    if (!card || !f) return;
    card.hidden = false;
    const tag = document.getElementById("features-tag");
    tag.textContent = f.reused ? "reused from the cache" : "extracted now";
    tag.classList.toggle("tag-reused", Boolean(f.reused));
    const shape = (f.feature_shape || []).join("×");
    const speed = typeof f.images_per_second === "number" ? Math.round(f.images_per_second).toLocaleString() + " images/s" : null;
    facts(document.getElementById("features-facts"), [
      ["Backbone", el("span", {}, backboneName(job, f), " ", el("code", {}, f.backbone))],
      ["Layer", f.layer ? el("code", {}, f.layer) : null],
      ["Weights", weightsLabel(f.weights)],
      ["Images", num(f.count)],
      ["Input", f.image_size ? f.image_size + "×" + f.image_size + " px" : null],
      ["Per image", (shape && shape !== String(f.feature_dim) ? shape + " = " : "") + num(f.feature_dim) + " numbers"],
      ["This job", f.reused ? "found them in the cache: nothing was computed again"
        : "extracted them" + (typeof f.seconds === "number" ? " in " + (f.seconds < 10 ? f.seconds.toFixed(1) + " s" : duration(f.seconds)) : "")],
      ["Speed", speed ? speed + (f.reused ? " (when first extracted)" : "") + (job.device && !f.reused ? " on " + job.device : "") : null],
      ["Precision", f.precision],
      ["Stored", f.bytes ? el("span", {}, bytes(f.bytes), " ", el("code", { class: "small", title: "cache folder " + f.cache },
        String(f.cache || "").slice(0, 12) + "…")) : null],
    ]);
    if (view !== "features" || !job.dataset) return;
    const actions = document.getElementById("features-actions");
    const query = new URLSearchParams({ dataset: job.dataset, backbone: job.params.backbone });
    if (["imagenet", "random"].includes(job.params.weights)) query.set("weights", job.params.weights);
    const links = [];
    if (card.dataset.datasetKind === "captions") {
      links.push(el("a", { class: "btn btn-primary", href: "/captioner/?" + query }, "Train a caption model on these features"));
    } else {
      const transfer = new URLSearchParams(query);
      transfer.set("architecture", "transfer");
      const logreg = new URLSearchParams(query);
      logreg.set("architecture", "logreg");
      links.push(el("a", { class: "btn btn-primary", id: "train-on-features", href: "/train/?" + transfer }, "Train a classifier on these features"),
        el("a", { class: "btn", href: "/train/?" + logreg }, "Logistic regression baseline"));
    }
    links.push(el("span", { class: "small muted" }, "Training on them starts at once: the features are already there."));
    actions.replaceChildren(...links);
    actions.hidden = false;
  }

  /* ---------------- captions ---------------- */

  function bleuTable(result) {
    const bleu = result.bleu || { greedy: { bleu1: result.bleu1, bleu2: result.bleu2, bleu3: result.bleu3, bleu4: result.bleu4 } };
    const keys = ["bleu1", "bleu2", "bleu3", "bleu4"];
    const rows = [
      ["greedy", "Greedy", "the most likely word, one at a time"],
      ["beam", "Beam search (width " + (result.beam_width || "?") + ")", "keeps the " + (result.beam_width || "few") + " most likely sentences so far"],
      ["baseline", "Baseline", el("span", {}, "always says: ", el("q", {}, result.baseline_caption || "—"))],
    ].filter(([key]) => bleu[key]);
    const best = {};
    keys.forEach(k => { best[k] = Math.max(...rows.map(([key]) => (typeof bleu[key][k] === "number" ? bleu[key][k] : -1))); });
    return el("table", { class: "table bleu-table", id: "bleu-table", "data-testid": "bleu-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Decoding"), ...keys.map(k => el("th", { class: "num" }, "BLEU-" + k.slice(-1))))),
      el("tbody", {}, ...rows.map(([key, name, note]) => el("tr", { "data-row": key, class: key === "baseline" ? "baseline" : null },
        el("td", {}, el("strong", {}, name), el("span", { class: "small muted bleu-how" }, note)),
        ...keys.map(k => el("td", { class: "num" + (bleu[key][k] === best[k] && key !== "baseline" ? " best" : "") }, fixed(bleu[key][k], 3)))))));
  }

  function captionFacts(job) {
    const r = job.result;
    const sizes = r.split_sizes || {};
    const onVal = r.evaluated_on === "validation" || r.evaluated_on === "val";
    return [
      ["Vocabulary", r.vocab_size ? num(r.vocab_size) + " words" + (job.params.min_word_count > 1 ? " (seen at least " + job.params.min_word_count + " times)" : "") : null],
      ["Longest caption", r.max_length ? r.max_length + " words, start and end marks included" : null],
      ["Tokenisation", r.tokenisation ? el("span", { class: "small" }, r.tokenisation) : null],
      ["Photos", ["train", "val", "test"].filter(k => sizes[k] !== undefined).map(k => num(sizes[k]) + " " + (k === "val" ? "validation" : k)).join(" · ")],
      ["Per epoch", r.samples_per_epoch ? num(r.samples_per_epoch) + " next-word examples" : null],
      ["Scored on", onVal ? "validation photos (the test split is empty)" : "test photos"],
      ["Stopped early", r.stopped_early ? "yes, at epoch " + (job.metrics || []).length + "; the best epoch is kept" : "no"],
    ];
  }

  function captionGallery(job) {
    const gallery = job.result.gallery || [];
    if (!gallery.length) return el("p", { class: "muted" }, "No photo was scored.");
    const width = job.result.beam_width;
    return el("div", { class: "caption-examples" }, ...gallery.map(g => {
      const url = job.dataset && g.item ? "/datasets/" + job.dataset + "/images/" + g.item : null;
      const picture = url
        ? el("a", { class: "thumb", href: url, target: "_blank", rel: "noopener", title: g.key }, el("img", { src: url, alt: g.key }))
        : el("div", { class: "thumb thumb-missing", title: g.key }, el("span", { class: "small muted" }, "image not available"));
      const img = picture.querySelector("img");
      if (img) img.addEventListener("load", () => { if (img.naturalWidth < 64) img.classList.add("pixelated"); });
      const refs = g.references || [];
      return el("figure", { class: "caption-example" }, picture,
        el("figcaption", {},
          el("dl", { class: "gallery-lines" },
            el("dt", {}, "Greedy"), el("dd", { class: "gallery-greedy" }, g.greedy || "—"),
            el("dt", {}, "Beam" + (width ? " (" + width + ")" : "")), el("dd", { class: "gallery-beam" }, g.beam || "—")),
          el("p", { class: "gallery-refs-title small muted" }, "People wrote"),
          el("ul", { class: "gallery-refs small" }, ...refs.map(r => el("li", {}, r)))));
    }));
  }

  function drawCaptionResult(job) {
    if (!drawSharedResult(job)) return;
    const result = job.result;
    if (!result.bleu && result.bleu4 === undefined) return;

    const beam = (result.bleu || {}).beam;
    document.getElementById("caption-headline").hidden = false;
    drawVerdict("caption-headline", result.verdict);
    document.getElementById("bleu4").textContent = fixed(result.bleu4, 3);
    document.getElementById("bleu4-note").textContent = "greedy decoding" + (beam ? " (beam search: " + fixed(beam.bleu4, 3) + ")" : "") +
      " · from 0 to 1, higher is better";
    document.getElementById("bleu1").textContent = fixed(result.bleu1, 3);
    const epochs = (job.metrics || []).length;
    document.getElementById("best-epoch").textContent = result.best_epoch ?? "—";
    document.getElementById("best-epoch-note").textContent = (epochs ? "of " + epochs + " trained · " : "") + "lowest validation loss";
    showModelEpoch(result, result.model_epoch ?? result.best_epoch);
    document.getElementById("train-time").textContent = duration(result.train_seconds);
    document.getElementById("train-speed").textContent = result.params ? num(result.params) + " parameters" : "";
    showModelActions(job.model);

    document.getElementById("caption-eval").hidden = false;
    const onVal = result.evaluated_on === "validation" || result.evaluated_on === "val";
    const scored = (result.split_sizes || {})[onVal ? "val" : "test"];
    document.getElementById("bleu-note").textContent = "on " + (scored ? num(scored) + " " : "the ") + (onVal ? "validation" : "test") + " photos";
    document.getElementById("bleu").replaceChildren(bleuTable(result));
    facts(document.getElementById("caption-facts"), captionFacts(job));
    document.getElementById("gallery-card").hidden = false;
    document.getElementById("caption-gallery").replaceChildren(captionGallery(job));
  }

  /* ---------------- exports ---------------- */

  const exporting = { signature: "", checkedDownload: false };

  /* An export job: how the file compares with the original (the model page's row, larger), whether it
     strays, and its download while it is still the newest export of its format. */
  function drawExport(job) {
    const result = job.result || {};
    const card = document.getElementById("export-card");
    if (!card || !window.VL.exportFigures || result.agreement === undefined) return;
    const signature = JSON.stringify(result);
    if (signature !== exporting.signature) {
      exporting.signature = signature;
      const figures = VL.exportFigures(result);
      const strays = result.ok === false;
      card.hidden = false;
      card.classList.toggle("export-bad", strays);
      const set = (id, figure, note) => {
        document.getElementById(id).textContent = figure.text;
        document.getElementById(id + "-note").textContent = note || figure.note || "";
      };
      set("export-agreement", figures.agreement, "gives the original's top class, " + (figures.agreement.note || "of the images"));
      set("export-accuracy", { text: pct(result.test_accuracy) },
        figures.accuracy.change ? figures.accuracy.change + " points against the original's " + pct(result.original_accuracy) : "");
      set("export-size", figures.size, figures.size.title || "");
      set("export-latency", figures.latency, "median for one image" + (figures.latency.note ? " · " + figures.latency.note : ""));
      const problem = document.getElementById("export-problem");
      problem.hidden = !strays;
      problem.textContent = strays ? (result.problem || "This export strays from the original beyond its tolerance.") : "";
      const verdict = document.getElementById("export-verdict");
      if (verdict) verdict.replaceChildren(strays ? VL.exportBadge("out_of_tolerance") : "");
      facts(document.getElementById("export-facts"), [
        ["Format", result.title || job.params.format],
        ["Checked on", typeof result.images === "number" ? num(result.images) + " held-out images, in the file's own runtime, against the original" : null],
        ["Largest probability difference", figures.prob.text],
        ["Within tolerance", strays ? "no: it strays from the original" : "yes"],
      ]);
    }
    if (exporting.checkedDownload || VL.ACTIVE.includes(job.status) || !job.params.model) return;
    exporting.checkedDownload = true;
    VL.api("/api/models/" + job.params.model + "/exports/")
      .catch(error => { if (error.status) return []; throw error; })  // refused: nothing to offer; no answer: ask again
      .then(rows => {
        const row = rows.find(r => r.format === job.params.format);
        const note = document.getElementById("export-download-note");
        if (row && row.job === job.id && row.download) {
          const fine = row.status === "succeeded";
          note.before(el("a", { class: "btn " + (fine ? "" : "btn-danger"), id: "export-download", href: row.download, download: "" },
            fine ? "Download the file" : "Download anyway (strays from the original)"));
          note.textContent = fine ? "" : "Read why above before you use it.";
        } else if (row && row.job !== job.id) {
          note.replaceChildren("A newer export of this format has replaced this file: ",
            el("a", { href: "/jobs/" + row.job + "/" }, "job #" + row.job), ".");
        }
      })
      .catch(() => { exporting.checkedDownload = false; });
  }

  /* ---------------- every job ---------------- */

  function render(job) {
    const log = document.getElementById("job-log");
    const text = (job.log_tail || []).join("\n") || "Nothing logged yet.";
    if (log.textContent !== text) {
      const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.textContent = text;
      if (atBottom) log.scrollTop = log.scrollHeight;
    }
    const status = document.getElementById("job-status");
    if (status.textContent !== job.status) {
      status.replaceWith(Object.assign(badge(job.status), { id: "job-status" }));
      document.getElementById("job-status").setAttribute("data-testid", "job-status");
    }
    const percent = Math.round(job.progress * 100);
    const bar = document.querySelector("#job-progress .bar");
    bar.style.width = percent + "%";
    document.getElementById("job-progress").setAttribute("aria-valuenow", percent);
    // A pruned trial's message (why it stopped) is in its own box below; the line just says so.
    document.getElementById("job-message").textContent = job.status === "pruned" ? "Pruned" : job.message || "";
    document.getElementById("job-percent").textContent = percent + "%";
    const error = document.getElementById("job-error");
    error.hidden = !job.error;
    error.textContent = job.error || "";
    const pruned = document.getElementById("job-pruned");  // a sweep's trial its pruner stopped: why
    pruned.hidden = job.status !== "pruned";
    document.getElementById("job-pruned-text").textContent = job.status === "pruned" ? job.message || "" : "";
    document.getElementById("cancel-form").hidden = !VL.ACTIVE.includes(job.status) || job.cancel_requested;
    const place = document.getElementById("queue-position");  // "3rd in the cpu queue, after ..."
    place.textContent = job.queue_position ? job.queue_position.text : "";
    place.hidden = !job.queue_position;
    document.getElementById("delete-job-form").hidden = VL.ACTIVE.includes(job.status);  // cancel first
    facts(document.getElementById("job-facts"), [
      ["Dataset", job.dataset ? el("a", { href: "/datasets/" + job.dataset + "/" }, job.params.dataset_name || "#" + job.dataset)
        : (job.params.dataset_name ? job.params.dataset_name + " (deleted)" : null)],
      ["Queue", job.queue], ["Worker", job.worker], ["Device", job.device],
      ["Created", when(job.created_at)], ["Started", when(job.started_at)],
      ["Finished", when(job.finished_at)], ["Duration", duration(job.duration_seconds)],
    ].concat(job.model ? [["Model", el("a", { href: "/models/" + job.model + "/" }, "#" + job.model)]] : []));
    facts(document.getElementById("job-params"), Object.entries(job.params).map(([k, v]) =>
      [k.replace(/_/g, " "), v === null ? null : k === "model" && Number.isInteger(v) ? el("a", { href: "/models/" + v + "/" }, "#" + v)
        : typeof v === "string" ? v : JSON.stringify(v)]));
    VIEWS[view](job);
  }

  function drawResultCard(job, draw) {
    if (!job.result) return;
    document.getElementById("result-card").hidden = false;
    document.getElementById("job-result").replaceChildren(draw(job.result));
  }

  // A kind's view (its `view` in webapp/jobs/kinds/) -> how its result is drawn.
  const VIEWS = {
    classifier: renderTraining,
    captioner: renderTraining,
    features: job => { if (job.result) drawFeatures(job, job.result); },
    export: drawExport,
    system_check: job => drawResultCard(job, systemCheck),
    result: job => drawResultCard(job, result => el("pre", {}, JSON.stringify(result, null, 2))),
  };

  VL.poll("/api/jobs/" + jobId + "/", render, { interval: 700, until: job => !VL.ACTIVE.includes(job.status) });
})();

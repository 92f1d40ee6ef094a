/* The Sweeps page: your sweeps (GET /api/sweeps/, refreshed while one runs) and the New sweep form.
   As the form changes, a dry run (POST /api/sweeps/?dry_run=1, 400 ms after the last edit) answers
   how long the sweep would take, or what is wrong, under the field concerned; Start posts the same
   body and opens the sweep's page. The search space is sweep-space.js's editor. */
(function () {
  "use strict";
  const { el, badge, ago } = window.VL;
  const $ = id => document.getElementById(id);

  const METHODS = { tpe: "Bayesian (TPE)", random: "Random", grid: "Grid" };
  const METRICS = { val_accuracy: "val. accuracy", val_loss: "val. loss", accuracy: "accuracy", loss: "loss",
    test_accuracy: "test accuracy", bleu4: "BLEU-4" };

  /* ---------------- the list ---------------- */

  const PAGE_SIZE = 10;
  const list = { page: 1, timer: null, text: null };

  function sweepRow(s) {
    const active = s.status === "running";
    const ended = s.trials_started - s.trials_active;
    return el("tr", { "data-sweep": s.id },
      el("td", {}, el("a", { class: "run-link", href: "/sweeps/" + s.id + "/" }, s.title),
        el("div", { class: "small muted" }, "#" + s.id + " · " + (s.kind === "train_captioner" ? "caption model" : "classifier") + " · " + s.project)),
      el("td", { class: "status-cell" }, badge(s.status),
        s.message ? el("div", { class: "small muted" }, s.message) : null),
      el("td", {}, METHODS[s.method] || s.method, el("div", { class: "small muted" }, s.pruning ? s.pruning + " pruning" : "no pruning")),
      el("td", {}, METRICS[s.metric] || s.metric, " ", el("span", { class: "muted", title: s.direction === "max" ? "highest is best" : "lowest is best" },
        s.direction === "max" ? "↑" : "↓")),
      el("td", { class: "num" }, ended + " of " + s.trials_planned,
        active && s.trials_active ? el("div", { class: "small muted" }, s.trials_active + " running") : null),
      el("td", { title: new Date(s.created_at).toLocaleString() }, ago(s.created_at)));
  }

  async function loadList() {
    clearTimeout(list.timer);
    let running = false;
    try {
      const page = await VL.api("/api/sweeps/?page_size=" + PAGE_SIZE + "&page=" + list.page);
      const text = JSON.stringify(page);
      running = page.results.some(s => s.status === "running");
      if (text !== list.text) {
        list.text = text;
        $("sweeps-count").textContent = page.count ? page.count.toLocaleString() + (page.count === 1 ? " sweep" : " sweeps") : "";
        $("sweeps-table").querySelector("tbody").replaceChildren(...(page.results.length ? page.results.map(sweepRow)
          : [el("tr", { class: "empty" }, el("td", { colspan: 6 }, "No sweeps yet. Set one up below: the defaults search the learning rate."))]));
        $("sweeps-pager").hidden = !page.next && !page.previous;
        $("sweeps-prev").disabled = !page.previous;
        $("sweeps-next").disabled = !page.next;
        const first = (list.page - 1) * PAGE_SIZE + 1;
        $("sweeps-where").textContent = page.count ? first + "–" + (first + page.results.length - 1) + " of " + page.count : "";
      }
    } catch (err) {
      if (err.status === 404 && list.page > 1) { list.page = 1; return loadList(); }
      /* keep the last list; try again later */
    }
    list.timer = setTimeout(loadList, document.hidden ? 30000 : running ? 3000 : 15000);
  }
  $("sweeps-prev").addEventListener("click", () => { list.page = Math.max(1, list.page - 1); loadList(); });
  $("sweeps-next").addEventListener("click", () => { list.page += 1; loadList(); });
  loadList();

  /* ---------------- the form ---------------- */

  const form = $("sweep-form");
  if (!form) return;  // no ready dataset: the page only links to Datasets
  const choices = VL.json("sweep-choices");
  const wantedDataset = String(VL.json("selected-dataset") || "");
  const kindSelect = $("f-kind"), datasetSelect = $("f-dataset"), archSelect = $("f-architecture");
  const backboneSelect = $("f-backbone"), metricSelect = $("f-metric"), directionSelect = $("f-direction");
  const pruningSelect = $("f-pruning"), start = $("sweep-start");
  const editor = VL.spaceEditor({ params: choices.params, mainRows: choices.sweep_main, main: $("space-main"),
    more: $("space-more"), moreBox: $("space-more-box"), moreSummary: $("space-more-summary") });
  const archByName = Object.fromEntries(choices.architectures.map(a => [a.name, a]));
  const labels = {};
  Object.values(choices.params).flat().forEach(p => { labels[p.name] = p.label; });
  form.querySelectorAll("[data-field]").forEach(n => { labels[n.dataset.field] = n.dataset.label; });

  function method() { return form.querySelector("input[name=method]:checked").value; }
  function arch() { return kindSelect.value === "train" ? archByName[archSelect.value] || null : null; }

  function fillDatasets() {
    const wanted = kindSelect.value === "train" ? "classification" : "captions";
    const previous = datasetSelect.value || wantedDataset;
    const mine = choices.datasets.filter(d => d.kind === wanted);
    datasetSelect.replaceChildren(
      ...(mine.length !== 1 ? [el("option", { value: "" }, mine.length ? "Choose a dataset…" : "No ready " + (wanted === "captions" ? "caption" : "classification") + " dataset")] : []),
      ...mine.map(d => el("option", { value: d.id }, (d.label || d.name) + " — " + (wanted === "captions"
        ? d.items.toLocaleString() + " photos" : d.classes + " classes · " + d.items.toLocaleString() + " images"))));
    if (mine.some(d => String(d.id) === previous)) datasetSelect.value = previous;
    datasetSelect.disabled = !mine.length;
    const help = $("dataset-help");
    help.replaceChildren(mine.length ? "Your ready " + (wanted === "captions" ? "caption" : "classification") + " datasets. " : "Add one first: ",
      el("a", { href: "/datasets/" }, mine.length ? "Add another" : "Datasets"), ".");
  }

  function fillArchitectures() {
    if (kindSelect.value === "train_captioner") {
      archSelect.replaceChildren(el("option", { value: "merge" }, "Merge (photo features + LSTM)"));
      archSelect.disabled = true;
      return;
    }
    const previous = archSelect.value && archByName[archSelect.value] ? archSelect.value : "mlp";
    archSelect.replaceChildren(...choices.architectures.map(a => el("option", { value: a.name }, a.title + " (" + a.name + ")")));
    archSelect.value = archByName[previous] ? previous : choices.architectures[0].name;
    archSelect.disabled = false;
  }

  function applyArchitecture() {
    const a = arch();
    const captions = kindSelect.value === "train_captioner";
    const needsBackbone = captions || (a && a.family !== "scratch" && !a.fixed_backbone);
    $("backbone-field").hidden = !needsBackbone;
    if (needsBackbone && !backboneSelect.dataset.touched) {
      const preferred = captions ? "vgg16" : (a.default_backbone || "mobilenet_v2");
      if ([...backboneSelect.options].some(o => o.value === preferred)) backboneSelect.value = preferred;
    }
    $("architecture-help").textContent = captions ? "The caption network every trial trains."
      : !a ? "" : a.family === "scratch" ? "Trained from scratch; proposed input " + a.image_size + " px."
      : a.fixed_backbone ? "A head on " + a.default_backbone + " features." : "A head on the backbone's features.";
    editor.show(kindSelect.value, a);
  }

  function fillMetrics() {
    const options = choices.objectives[kindSelect.value];
    const previous = metricSelect.value;
    metricSelect.replaceChildren(...options.map(o => el("option", { value: o.name }, o.label + (o.per_epoch ? "" : " (when a trial ends)"))));
    metricSelect.value = options.some(o => o.name === previous) ? previous : "val_accuracy";
    applyMetric();
  }

  function applyMetric() {
    const o = choices.objectives[kindSelect.value].find(x => x.name === metricSelect.value);
    if (!o) return;
    directionSelect.value = o.direction;
    [...pruningSelect.options].forEach(opt => { opt.disabled = !o.per_epoch && opt.value !== ""; });
    if (!o.per_epoch) {  // no pruner can judge it: off, and back as it was with a per-epoch metric
      if (pruningSelect.value) pruningSelect.dataset.before = pruningSelect.value;
      pruningSelect.value = "";
    } else if (pruningSelect.dataset.before) {
      pruningSelect.value = pruningSelect.dataset.before;
      delete pruningSelect.dataset.before;
    }
    describePruning();
    $("metric-help").textContent = o.per_epoch ? "Recorded every epoch: a pruner can judge trials on it."
      : "Known only when a trial ends, so trials cannot be pruned on it.";
  }

  function describePruning() {
    const option = pruningSelect.selectedOptions[0];
    $("pruning-help").textContent = option ? option.dataset.help : "";
  }

  function applyMethod() {
    const m = method();
    editor.setMethod(m);
    const trials = $("f-trials");
    trials.placeholder = m === "grid" ? "every point" : "";
    // A grid runs all its points unless told fewer; the default count would cut it short.
    if (m === "grid" && trials.value === String(choices.limits.default_trials)) trials.value = "";
    else if (m !== "grid" && trials.value === "") trials.value = choices.limits.default_trials;
    $("trials-help").textContent = m === "grid" ? "A grid runs every combination of the listed values; fewer trials stop it early."
      : "At most " + choices.limits.trials + "; you can add more later.";
  }

  function summarizeWhere() {
    const parts = [$("f-name").value.trim() ? "“" + $("f-name").value.trim() + "”" : "named after the architecture and dataset",
      "project " + ($("f-project").value.trim() || "default"), { auto: "automatic queue", cpu: "CPU workers", gpu: "GPU workers" }[$("f-queue").value]];
    $("advanced-summary").textContent = parts.join(" · ");
  }

  /* The request body, and the mistakes worth saying before asking the server. */
  function collect() {
    const { params, space, missing } = editor.collect();
    const a = arch();
    if (!$("backbone-field").hidden) params.backbone = backboneSelect.value;
    const body = {
      kind: kindSelect.value, dataset: datasetSelect.value ? Number(datasetSelect.value) : null,
      params, space, method: method(), parallel: VL.numberValue($("f-parallel")),
      objective: { metric: metricSelect.value, direction: directionSelect.value },
      pruning: pruningSelect.value || null, queue: $("f-queue").value,
    };
    if (a) body.architecture = a.name;
    const trials = VL.numberValue($("f-trials"));
    if (trials !== null) body.trials = trials;
    else if (body.method !== "grid") missing.trials = ["Enter how many trials to run."];
    const budget = VL.numberValue($("f-budget"));
    if (budget !== null) body.budget_minutes = budget;
    if (body.parallel === null) missing.parallel = ["Enter how many trials may run at once."];
    ["name", "project"].forEach(key => { const v = $("f-" + key).value.trim(); if (v) body[key] = v; });
    const errors = {};
    Object.entries(missing).forEach(([name, m]) => {
      if (["trials", "parallel"].includes(name)) errors[name] = m;
      else (errors.space = errors.space || {})[name] = m;
    });
    if (!Object.keys(space).length && !errors.space) errors.space = ["Tick Search for at least one setting."];
    return { body, errors };
  }

  /* ---------------- errors where they belong ---------------- */

  const errorBox = $("form-errors"), errorList = $("form-error-list");

  function clearErrors() {
    errorBox.hidden = true;
    errorList.replaceChildren();
    form.querySelectorAll("[data-error-for]").forEach(p => { p.hidden = true; p.textContent = ""; });
    form.querySelectorAll(".has-error").forEach(n => n.classList.remove("has-error"));
    form.querySelectorAll("[aria-invalid]").forEach(i => i.removeAttribute("aria-invalid"));
  }

  /* [[slot, label, sentence]] from a DRF 400: params and space are keyed by parameter. */
  function flatten(errors) {
    const flat = [];
    Object.entries(errors || {}).forEach(([key, value]) => {
      if ((key === "params" || key === "space") && value && !Array.isArray(value) && typeof value === "object") {
        Object.entries(value).forEach(([name, m]) => {
          const slot = editor.rowOf(name) ? "param:" + name : key;
          flat.push([slot, labels[name] || name, VL.errorText(m)]);
        });
      } else if (key === "objective" && value && typeof value === "object" && !Array.isArray(value)) {
        flat.push(["metric", labels.metric, VL.errorText(value)]);
      } else {
        const label = ["detail", "non_field_errors"].includes(key) ? "" : key === "space" ? "Search space" : labels[key] || key.replace(/_/g, " ");
        flat.push([key, label, VL.errorText(value)]);
      }
    });
    return flat;
  }

  /* Sentences under their fields; with `loud`, also the list at the top, scrolled to. Returns what had no field. */
  function showErrors(errors, loud) {
    const homeless = [];
    let first = null;
    flatten(errors).forEach(([slotName, label, message]) => {
      const slot = form.querySelector('[data-error-for="' + CSS.escape(slotName) + '"]');
      if (slot) {
        slot.textContent = slot.hidden ? message : slot.textContent + " " + message;
        slot.hidden = false;
        const holder = slot.closest(".field, .space-row");
        if (holder) {
          holder.classList.add("has-error");
          const input = holder.querySelector("input:not([type=checkbox]):not([type=radio]):not([hidden]), select");
          if (input) input.setAttribute("aria-invalid", "true");
        }
        if (slotName.startsWith("param:")) editor.openFor(slotName.slice(6));
        const details = slot.closest("details");
        if (details) details.open = true;
        first = first || holder || slot;
      } else {
        homeless.push((label ? label + ": " : "") + message);
      }
      if (loud) errorList.append(el("li", {}, label ? el("strong", {}, label + ": ") : null, message));
    });
    if (loud) {
      errorBox.hidden = false;
      errorBox.scrollIntoView({ block: "center", behavior: "smooth" });
      errorBox.focus({ preventScroll: true });
    }
    return homeless;
  }

  /* ---------------- the estimate ---------------- */

  const estimate = { timer: null, seq: 0, controller: null };
  const estimateBox = $("estimate"), estimateText = $("estimate-text");

  function say(state, text) {
    estimateBox.dataset.state = state;
    estimateText.replaceChildren(...(state === "busy" ? [el("span", { class: "spinner", "aria-hidden": "true" }), " ", text] : [text]));
  }

  function scheduleEstimate() {
    clearTimeout(estimate.timer);
    estimate.timer = setTimeout(runEstimate, 400);
  }

  async function runEstimate() {
    const { body, errors } = collect();
    if (estimate.controller) estimate.controller.abort();
    const seq = ++estimate.seq;
    clearErrors();
    if (!body.dataset) { say("idle", "Choose a dataset to see how long it takes."); return; }
    if (Object.keys(errors).length) {
      showErrors(errors, false);
      say("problem", "Fix the marked settings to see how long it takes.");
      return;
    }
    const asked = JSON.stringify(body);
    if (asked === estimate.asked && estimate.answer) { estimate.answer(); return; }  // nothing changed: no probe again
    estimate.asked = asked;
    estimate.answer = null;
    say("busy", "Estimating…");
    estimate.controller = new AbortController();
    let data, failed = null;
    try {
      data = await VL.api("/api/sweeps/?dry_run=1", { method: "POST", json: body, signal: estimate.controller.signal,
        fallback: code => (code ? "No estimate right now (error " + code + ")." : "No estimate: the server did not answer.") });
    } catch (err) {
      if (err.name === "AbortError" || !err.status) {
        if (estimate.asked === asked) estimate.asked = null;
        if (err.name !== "AbortError" && seq === estimate.seq) say("problem", err.message);
        return;
      }
      failed = err;
    }
    if (seq !== estimate.seq) return;  // a later edit asked again
    if (!failed && data && data.estimate) {  // "unknown": no earlier run and no probe to go by
      estimate.answer = () => say(data.estimate.seconds === null ? "unknown" : "ok", data.estimate.text || "No estimate yet.");
    } else if (failed && failed.status === 400) {
      estimate.answer = () => {
        const homeless = showErrors(failed.data, false);
        say("problem", homeless.length ? homeless.join(" ") : "Fix the marked settings to see how long it takes.");
      };
    } else {
      estimate.asked = null;  // ask again next time
      say("problem", failed ? failed.message : "No estimate right now (error 200).");
      return;
    }
    estimate.answer();
  }

  /* ---------------- start ---------------- */

  let submitting = false, queueOk = !$("queue-problem") || $("queue-problem").hidden;
  function updateStart() { start.disabled = submitting || !queueOk; }

  async function submit(event) {
    event.preventDefault();
    if (submitting) return;
    clearTimeout(estimate.timer);
    estimate.seq++;
    if (estimate.controller) estimate.controller.abort();
    clearErrors();
    const { body, errors } = collect();
    if (!body.dataset) errors.dataset = ["Choose the dataset every trial trains on."];
    if (Object.keys(errors).length) {
      showErrors(errors, true);
      say("problem", "Fix the marked settings to see how long it takes.");
      estimate.asked = null;
      return;
    }
    submitting = true;
    updateStart();
    start.textContent = "Starting…";
    let sweep;
    try {
      sweep = await VL.api("/api/sweeps/", { method: "POST", json: body,
        fallback: code => (code ? "The server could not start the sweep (error " + code + "). Try again in a moment." : undefined) });
    } catch (err) {
      if (err.status === 400 && err.data) {
        showErrors(err.data, true);
        say("problem", "Fix the marked settings to see how long it takes.");
        estimate.asked = null;
      } else {
        showErrors({ detail: [err.message] }, true);
      }
      return done();
    }
    window.location.assign("/sweeps/" + sweep.id + "/");  // the button stays disabled while the sweep's page loads
  }

  function done() {
    submitting = false;
    start.textContent = "Start sweep";
    updateStart();
  }

  VL.poll("/api/queue-status/", status => {
    queueOk = status.ok;
    if ($("queue-problem")) $("queue-problem").hidden = status.ok;
    updateStart();
  }, { interval: 5000, hiddenInterval: 30000 });

  /* ---------------- wiring ---------------- */

  kindSelect.addEventListener("change", () => { fillDatasets(); fillArchitectures(); applyArchitecture(); fillMetrics(); });
  archSelect.addEventListener("change", applyArchitecture);
  backboneSelect.addEventListener("change", () => { backboneSelect.dataset.touched = "1"; });
  metricSelect.addEventListener("change", applyMetric);
  pruningSelect.addEventListener("change", describePruning);
  form.querySelectorAll("input[name=method]").forEach(r => r.addEventListener("change", applyMethod));
  ["input", "change"].forEach(type => form.addEventListener(type, event => {
    if (event.target.closest("#advanced")) summarizeWhere();
    scheduleEstimate();
  }));
  form.addEventListener("submit", submit);

  if (wantedDataset && choices.datasets.some(d => String(d.id) === wantedDataset && d.kind === "captions")) kindSelect.value = "train_captioner";
  fillDatasets();
  fillArchitectures();
  applyArchitecture();
  fillMetrics();
  applyMethod();
  summarizeWhere();
  runEstimate();
})();

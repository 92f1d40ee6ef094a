/* The features page: launch an extract_features job, and manage uploaded backbones. The list
   comes from GET /api/backbones/; an upload goes by XMLHttpRequest so its progress can be shown,
   then waits while a worker opens the file; its refusal is shown under the file field. */
(function () {
  "use strict";
  const { el, bytes, numberValue } = window.VL;
  const $ = id => document.getElementById(id);

  document.querySelectorAll("[data-bytes]").forEach(node => { node.textContent = bytes(Number(node.dataset.bytes)); });

  /* ---- extract features ---- */

  const form = $("extract-form");
  const backboneSelect = $("x-backbone");

  function applyBackbone() {
    if (!backboneSelect) return;
    const option = backboneSelect.selectedOptions[0];
    $("x-backbone-help").textContent = option ? option.dataset.description : "";
    $("x-weights-field").hidden = !option || option.dataset.weights !== "1";
  }

  if (form) {
    VL.launcher(form, {
      button: $("extract-start"),
      collect() {
        const params = {}, missing = {};
        const dataset = $("x-dataset").value;
        if (!dataset) missing.dataset = ["Choose a dataset."];
        const option = backboneSelect.selectedOptions[0];
        if (option) params.backbone = option.value;
        if (option && option.dataset.weights === "1") params.weights = $("x-weights").value;
        params.precision = $("x-precision").value;
        const batch = numberValue($("x-batch_size"));
        if (batch === null || Number.isNaN(batch)) missing.batch_size = ["Enter a number."];
        else params.batch_size = batch;
        return { body: { kind: "extract_features", dataset: dataset ? Number(dataset) : null, queue: $("x-queue").value, params }, missing };
      },
    });
    backboneSelect.addEventListener("change", applyBackbone);
    applyBackbone();
  }

  /* ---- the backbone list ---- */

  const body = $("backbones-body");
  const listError = $("backbones-error");
  const MODEL_FORMATS = VL.json("model-formats"); // jobs.ml.formats: each format's name, title and suffixes
  const FORMATS = Object.fromEntries(MODEL_FORMATS.formats.map(f => [f.name, f.title]));
  const SAMPLE_PHOTOS = JSON.parse($("sample-photos").textContent); // sample photo name -> its thumbnail
  const CHECKING = "Checking the model on sample photos…";
  const scalingCatalogue = $("b-input_scaling"); // the server's scalings, with their help, for every form here
  const datasetCatalogue = $("b-dataset");

  function label(b) {
    return b.name + " (uploaded, " + b.output_dim + " numbers per photo)";
  }

  function shapeText(b) {
    const shape = (b.feature_shape || []).join("×");
    return (shape && shape !== String(b.output_dim) ? shape + " = " : "") + Number(b.output_dim).toLocaleString() + " numbers";
  }

  function row(b) {
    const remove = el("button", { type: "button", class: "btn btn-danger btn-small", "data-id": b.id,
      "aria-label": "Delete " + b.name }, "Delete");
    remove.addEventListener("click", () => confirmDelete(remove, b));
    const use = form ? el("button", { type: "button", class: "btn btn-small", "data-use": b.key }, "Extract") : null;
    if (use) use.addEventListener("click", () => {
      backboneSelect.value = b.key;
      applyBackbone();
      $("extract-card").scrollIntoView({ block: "start", behavior: "smooth" });
      backboneSelect.focus({ preventScroll: true });
    });
    const train = new URLSearchParams({ architecture: "transfer", backbone: b.key });
    return el("tr", { "data-backbone": b.id, id: "backbone-" + b.id },
      el("td", { class: "backbone-cell" }, el("strong", { class: "backbone-name" }, b.name), el("br"), el("code", { class: "small" }, b.key)),
      el("td", { class: "num", "data-label": "Input" }, b.input_size + "×" + b.input_size + " px", el("br"),
        el("span", { class: "small muted" }, b.channels === 1 ? "grayscale" : "colour")),
      el("td", { "data-label": "Features" }, shapeText(b), el("br"),
        el("span", { class: "small muted" }, "from ", el("code", { class: "layer-name" }, b.output || "the output"))),
      el("td", { "data-label": "File" }, FORMATS[b.format] || b.format, el("br"), el("span", { class: "small muted", title: b.filename }, bytes(b.size_bytes))),
      el("td", { class: "small", "data-label": "Added" }, b.created_at ? new Date(b.created_at).toLocaleDateString() : "—"),
      el("td", { class: "row-actions" },
        el("a", { class: "btn btn-small", href: "/train/?" + train }, "Train with it"), use, remove));
  }

  /* ---- a backbone's sanity check: its scaling, the verdict, the photos and what every scaling gave ---- */

  function sameScaling(a, b) {
    const norm = s => JSON.stringify([s && s.kind || "raw", (s && s.mean) || [], (s && s.std) || []]);
    return norm(a) === norm(b);
  }

  function percent(p) {
    return p < 0.005 ? "<1%" : Math.round(p * 100) + "%";
  }

  function statusBadge(status) {
    if (status === "ok") return el("span", { class: "check-badge check-ok", "data-testid": "check-status" }, el("span", { "aria-hidden": "true" }, "✓"), "OK");
    if (status === "warning") return el("span", { class: "check-badge check-warning", "data-testid": "check-status" }, el("span", { "aria-hidden": "true" }, "!"), "Warning");
    return el("span", { class: "check-badge check-none", "data-testid": "check-status" }, "Not checked");
  }

  function photoCount(report) {
    const samples = report.photos.filter(p => SAMPLE_PHOTOS[p.name]).length;
    const yours = report.photos.length - samples;
    return samples + " sample photo" + (samples === 1 ? "" : "s") + (yours ? " and " + yours + " of your images" : "");
  }

  function scalingLine(b) {
    return el("p", { class: "check-scaling" },
      el("span", { class: "check-key" }, "Input scaling"),
      el("strong", { class: "scaling-title" }, b.input_scaling_title || "Raw 0..255"),
      b.scaling_source ? el("span", { class: "muted scaling-source" }, "Why: " + b.scaling_source + ".") : null);
  }

  function photo(p, classifier) {
    const src = SAMPLE_PHOTOS[p.name];
    const thumb = src
      ? el("div", { class: "check-thumb" }, el("img", { src, alt: "Sample photo: " + (p.subject || p.name), loading: "lazy" }))
      : el("div", { class: "check-thumb check-thumb-file", "aria-hidden": "true" }, "from your dataset");
    let mark = null;
    if (classifier && typeof p.recognised === "boolean") {
      mark = p.recognised
        ? el("span", { class: "check-mark yes", title: "The model recognises " + p.subject }, "✓ recognised")
        : el("span", { class: "check-mark no", title: "The model does not recognise " + p.subject }, "✗ not recognised");
    }
    const top = classifier && p.top5 ? el("ol", { class: "check-top5", "aria-label": "Top 5 labels for " + p.name },
      ...p.top5.map((entry, i) => el("li", { class: i === 0 ? "first" : null, style: "--p:" + Math.max(0, Math.min(100, entry.probability * 100)).toFixed(1) + "%" },
        el("span", { class: "check-label", title: entry.label }, entry.label),
        el("span", { class: "check-prob" }, percent(entry.probability))))) : null;
    return el("figure", { class: "check-photo", "data-photo": p.name },
      thumb,
      el("figcaption", {}, el("span", { class: "check-photo-name" }, el("strong", {}, p.name), mark), top));
  }

  function alternatives(b, report) {
    const classifier = report.classifier && report.known > 0;
    const head = el("tr", {}, el("th", { scope: "col" }, "Scaling"), el("th", { scope: "col", class: "num" }, "Spread"),
      classifier ? el("th", { scope: "col", class: "num" }, "Recognised") : null);
    const rows = report.alternatives.map((alt, i) => {
      const current = i === 0;
      const suggested = report.suggested && sameScaling(alt.scaling, report.suggested);
      return el("tr", { class: (current ? "current" : "") + (suggested ? " suggested" : "") },
        el("td", {}, el("span", { class: "alt-title" }, alt.title),
          current ? el("span", { class: "tag tag-current" }, "current") : null,
          suggested ? el("span", { class: "tag tag-suggested" }, "suggested") : null),
        el("td", { class: "num" }, Number(alt.spread).toFixed(2)),
        classifier ? el("td", { class: "num" }, alt.recognised === null || alt.recognised === undefined ? "—" : alt.recognised + " of " + report.known) : null);
    });
    return el("div", { class: "check-alternatives" },
      el("p", { class: "check-key check-table-title", id: "alternatives-" + b.id }, "Every scaling, on the same photos"),
      el("table", { class: "table check-table", "aria-labelledby": "alternatives-" + b.id },
        el("thead", {}, head), el("tbody", {}, ...rows)),
      el("p", { class: "small muted" }, "Spread: how much its features differ from photo to photo; near 0, it sees every photo alike."));
  }

  /* A scaling select (options from the upload form's), its help, and mean / std shown only for mean_std. */
  function scalingFields(current) {
    const select = el("select", { name: "input_scaling", class: "scaling-select" });
    [...scalingCatalogue.options].forEach(option => {
      select.append(el("option", { value: option.value, "data-help": option.dataset.help,
        selected: current && option.value === current.kind }, option.textContent));
    });
    const statistic = (name, text, values) => el("div", { class: "field mean-std-field", "data-field": name, "data-label": text },
      el("label", {}, el("span", {}, text + " ", el("span", { class: "unit" }, "pixel units")),
        el("input", { type: "text", name, maxlength: 100, autocomplete: "off", spellcheck: "false", inputmode: "decimal",
          value: values && values.length ? values.join(", ") : null, placeholder: "127.5" })),
      el("p", { class: "field-error", "data-error-for": name, hidden: true }));
    const isMeanStd = current && current.kind === "mean_std";
    return [
      el("div", { class: "field scaling-field", "data-field": "input_scaling", "data-label": "Input scaling" },
        el("label", {}, "Input scaling", select),
        el("p", { class: "small muted field-help scaling-help" }),
        el("p", { class: "field-error", "data-error-for": "input_scaling", hidden: true })),
      statistic("input_mean", "Mean", isMeanStd ? current.mean : null),
      statistic("input_std", "Std", isMeanStd ? current.std : null),
    ];
  }

  function wireScaling(scope) {
    const select = scope.querySelector(".scaling-select");
    const apply = () => {
      const option = select.selectedOptions[0];
      scope.querySelector(".scaling-help").textContent = option ? option.dataset.help : "";
      scope.querySelectorAll(".mean-std-field").forEach(field => { field.hidden = select.value !== "mean_std"; });
    };
    select.addEventListener("change", apply);
    apply();
    return apply;
  }

  /* What the change form and the upload form send for a scaling, or {errors} when mean / std are missing. */
  function scalingValues(scope) {
    const kind = scope.querySelector(".scaling-select").value;
    const values = { input_scaling: kind };
    if (kind !== "mean_std") return { values };
    const errors = {};
    ["input_mean", "input_std"].forEach(name => {
      const value = scope.querySelector('[name="' + name + '"]').value.trim();
      if (value) values[name] = value;
      else errors[name] = ["Enter the " + (name === "input_mean" ? "mean" : "std") + ": one number, or three for R, G and B."];
    });
    return Object.keys(errors).length ? { errors } : { values };
  }

  function changeForm(b) {
    const datasets = datasetCatalogue && datasetCatalogue.options.length > 1
      ? el("div", { class: "field", "data-field": "dataset", "data-label": "Dataset" },
        el("label", {}, "Also check on", el("select", { name: "dataset" },
          ...[...datasetCatalogue.options].map(o => el("option", { value: o.value }, o.textContent)))),
        el("p", { class: "field-error", "data-error-for": "dataset", hidden: true }))
      : null;
    const changer = el("form", { class: "change-form", novalidate: true },
      el("div", { class: "change-fields" }, ...scalingFields(b.input_scaling), datasets),
      el("div", { class: "form-actions" }, el("button", { type: "submit", class: "btn btn-small btn-primary" }, "Check with this scaling")));
    wireScaling(changer);
    const errors = VL.fieldErrors(changer);
    changer.addEventListener("input", event => { if (event.target.name) errors.clearField(event.target.name); });
    changer.addEventListener("submit", event => {
      event.preventDefault();
      errors.clear();
      const { values, errors: missing } = scalingValues(changer);
      if (missing) { errors.show(missing); return; }
      const dataset = changer.querySelector('[name="dataset"]');
      if (dataset && dataset.value) values.dataset = Number(dataset.value);
      recheck(b, values, errors);
    });
    return el("details", { class: "change-scaling" }, el("summary", {}, "Change scaling"), changer);
  }

  function checkPanel(b) {
    const report = b.sanity || {};
    const checked = Boolean(report.status);
    const actions = [];
    if (checked && report.suggested) {
      const found = (report.alternatives || []).find(alt => sameScaling(alt.scaling, report.suggested));
      const title = found ? found.title : report.suggested.kind;
      const use = el("button", { type: "button", class: "btn btn-primary btn-small", "data-action": "suggested" }, "Use " + title);
      const values = { input_scaling: report.suggested.kind };
      if (report.suggested.kind === "mean_std") Object.assign(values, { input_mean: report.suggested.mean.join(", "), input_std: report.suggested.std.join(", ") });
      use.addEventListener("click", () => recheck(b, values));
      actions.push(use, el("span", { class: "small muted" }, "and check again"));
    }
    if (!checked) {
      const now = el("button", { type: "button", class: "btn btn-primary btn-small" }, "Check it now");
      now.addEventListener("click", () => recheck(b, { input_scaling: (b.input_scaling && b.input_scaling.kind) || "raw" }));
      actions.push(now);
    }
    const summary = el("div", { class: "check-summary" },
      el("div", { class: "check-head" }, statusBadge(report.status),
        el("span", { class: "check-title" }, checked ? "Checked on " + photoCount(report) : "Not checked on the sample photos yet")),
      scalingLine(b),
      checked && report.messages && report.messages.length
        ? el("ul", { class: "check-messages" }, ...report.messages.map(message => el("li", {}, message)))
        : (checked ? null : el("p", { class: "check-messages small muted" }, "It was uploaded before backbones were run on sample photos.")),
      actions.length ? el("div", { class: "check-actions" }, ...actions) : null,
      changeForm(b));
    return el("div", { class: "backbone-check", "data-status": report.status || "unchecked" },
      el("div", { class: "check-main" }, summary,
        checked && report.alternatives && report.alternatives.length ? alternatives(b, report) : null),
      checked && report.photos && report.photos.length
        ? el("div", { class: "check-photos" }, ...report.photos.map(p => photo(p, report.classifier))) : null,
      el("p", { class: "check-busy", role: "status", "aria-live": "polite", hidden: true }),
      el("div", { class: "alert alert-error check-error", role: "alert", hidden: true }));
  }

  function checkRow(b) {
    return el("tr", { class: "check-row", "data-check-for": b.id }, el("td", { colspan: 6 }, checkPanel(b)));
  }

  function rows(b) {
    return [row(b), checkRow(b)];
  }

  function emptyRow() {
    return el("tr", { class: "empty" }, el("td", { colspan: 6 }, "No backbone uploaded yet. The built-in ones are always there."));
  }

  function render(list) {
    body.replaceChildren(...(list.length ? list.flatMap(rows) : [emptyRow()]));
  }

  /* Change a backbone's scaling (or check it again): the worker runs it on the photos, a few seconds. */
  async function recheck(b, values, errors) {
    const panel = body.querySelector('[data-check-for="' + b.id + '"] .backbone-check');
    const main = body.querySelector('[data-backbone="' + b.id + '"]');
    if (!panel || panel.classList.contains("busy")) return;
    const controls = [...panel.querySelectorAll("button, select, input"), ...main.querySelectorAll("button")].filter(c => !c.disabled);
    const busy = panel.querySelector(".check-busy");
    const failure = panel.querySelector(".check-error");
    failure.hidden = true;
    controls.forEach(control => { control.disabled = true; });
    panel.classList.add("busy");
    panel.setAttribute("aria-busy", "true");
    busy.replaceChildren(el("span", { class: "spinner", "aria-hidden": "true" }),
      values.dataset ? "Checking the model on sample photos and your dataset’s images…" : CHECKING);
    busy.hidden = false;
    let answer, failed = null;
    try {
      answer = await VL.api("/api/backbones/" + b.id + "/", { method: "PATCH", json: values, fallback: checkFailed });
    } catch (err) {
      failed = err;
    }
    if (!failed) {
      backbones = backbones.map(x => (x.id === answer.id ? answer : x));
      const [fresh, freshCheck] = rows(answer);
      main.replaceWith(fresh);
      panel.closest("tr").replaceWith(freshCheck);
      const done = freshCheck.querySelector(".check-busy");
      done.textContent = "Checked again with " + answer.input_scaling_title + ".";
      done.classList.add("done");
      done.hidden = false;
      return;
    }
    panel.classList.remove("busy");
    panel.removeAttribute("aria-busy");
    busy.hidden = true;
    controls.forEach(control => { control.disabled = false; });
    if (failed.status === 400 && errors && failed.data && !failed.data.detail) {
      panel.querySelector(".change-scaling").open = true;
      errors.show(failed.data);
      return;
    }
    if (failed.status === 404) failure.textContent = "This backbone is gone: reload the page.";
    else if (failed.status === 400) failure.textContent = VL.errorText(failed.data) || "The check could not run.";
    else failure.textContent = failed.message;
    failure.hidden = false;
  }

  /* The sentence for a check the server answered without one (status 0: no answer, said by VL.api). */
  function checkFailed(status) {
    return status ? "The check could not run (error " + status + "). Try again in a moment." : undefined;
  }

  /* Keep every backbone <select> on the page in step with the list. */
  function addOption(b) {
    if (!backboneSelect || backboneSelect.querySelector('option[value="' + CSS.escape(b.key) + '"]')) return;
    let group = [...backboneSelect.querySelectorAll("optgroup")].find(g => g.label === "Uploaded by you");
    if (!group) {
      group = el("optgroup", { label: "Uploaded by you" });
      const builtIn = backboneSelect.querySelector("optgroup");
      backboneSelect.insertBefore(group, builtIn ? builtIn.nextSibling : null);
    }
    group.prepend(el("option", { value: b.key, "data-size": b.input_size, "data-weights": "0",
      "data-description": "A feature extractor you uploaded; its own weights are used." }, label(b)));
  }

  function removeOption(b) {
    if (!backboneSelect) return;
    const option = backboneSelect.querySelector('option[value="' + CSS.escape(b.key) + '"]');
    if (!option) return;
    const group = option.parentElement;
    option.remove();
    if (group.tagName === "OPTGROUP" && !group.children.length) group.remove();
    applyBackbone();
  }

  let backbones = [];

  async function load() {
    try {
      backbones = await VL.allPages("/api/backbones/?page_size=200");
      listError.hidden = true;
      render(backbones);
    } catch (err) {
      body.replaceChildren(emptyRow());
      listError.textContent = "Your backbones could not be loaded. Reload the page to try again.";
      listError.hidden = false;
    }
  }

  /* Two clicks to delete, so a stray one never removes a file: the first asks, the second does it. */
  function confirmDelete(button, b) {
    if (!button.dataset.armed) {
      button.dataset.armed = "1";
      button.textContent = "Click again to delete";
      button.classList.add("armed");
      setTimeout(() => {
        if (!button.isConnected || button.disabled) return;
        delete button.dataset.armed;
        button.textContent = "Delete";
        button.classList.remove("armed");
      }, 4000);
      return;
    }
    remove(button, b);
  }

  async function remove(button, b) {
    button.disabled = true;
    button.textContent = "Deleting…";
    let failed = null;
    try {
      await VL.api("/api/backbones/" + b.id + "/", { method: "DELETE" });
    } catch (err) {
      failed = err;
    }
    if (!failed || failed.status === 404) {
      backbones = backbones.filter(x => x.id !== b.id);
      render(backbones);
      removeOption(b);
      listError.hidden = true;
      return;
    }
    button.disabled = false;
    delete button.dataset.armed;
    button.classList.remove("armed");
    button.textContent = "Delete";
    listError.textContent = failed.status ? "“" + b.name + "” could not be deleted (error " + failed.status + ")." : failed.message;
    listError.hidden = false;
  }

  /* ---- upload ---- */

  const upload = $("backbone-form");
  const errors = VL.fieldErrors(upload);
  const fileInput = $("b-file");
  const labelsInput = $("b-labels");
  const progress = $("b-progress");
  const bar = progress.querySelector(".bar");
  const progressText = $("b-progress-text");
  const uploadButton = $("b-upload");
  const cancelButton = $("b-cancel");
  const failBox = $("b-error");
  const success = $("b-success");
  const SUFFIXES = MODEL_FORMATS.formats.flatMap(f => f.suffixes);
  const maxBytes = Number(document.querySelector("#b-file-help [data-bytes]").dataset.bytes) || Infinity;
  const applyUploadScaling = wireScaling(upload);
  let xhr = null;

  function setProgress(fraction, message) {
    const pct = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
    bar.style.width = pct + "%";
    $("b-progress-bar").setAttribute("aria-valuenow", pct);
    $("b-progress-percent").textContent = pct + "%";
    progressText.textContent = message;
  }

  /* The file is up; the worker is running it on the photos, which takes seconds but reports no progress. */
  function setChecking() {
    progress.classList.add("checking");
    $("b-progress-bar").removeAttribute("aria-valuenow");
    $("b-progress-percent").textContent = "";
    progressText.replaceChildren(el("span", { class: "spinner", "aria-hidden": "true" }),
      $("b-dataset").value ? "Checking the model on sample photos and your dataset’s images…" : CHECKING);
    uploadButton.textContent = "Checking…";
  }

  function finish() {
    xhr = null;
    uploadButton.disabled = false;
    uploadButton.textContent = "Upload backbone";
    cancelButton.hidden = true;
    progress.classList.remove("checking");
    upload.querySelectorAll("input, select").forEach(input => { input.disabled = false; });
  }

  function refuse(message) {
    progress.hidden = true;
    failBox.textContent = message;
    failBox.hidden = false;
  }

  /* The server's answer to an upload: the new backbone in the list and every menu, or why not. */
  function uploaded(status, answer) {
    if (status === 201) {
      progress.hidden = true;
      backbones = [answer, ...backbones.filter(b => b.id !== answer.id)];
      render(backbones);
      addOption(answer);
      upload.reset();
      applyUploadScaling();
      $("b-name").placeholder = "the file's name";
      const warning = answer.sanity && answer.sanity.status === "warning";
      success.replaceChildren(el("strong", {}, "“" + answer.name + "” is ready: "),
        shapeText(answer) + " per photo at " + answer.input_size + "×" + answer.input_size + " px, from ",
        el("code", { class: "layer-name" }, answer.output || "the output"), ". Choose it as ", el("code", {}, answer.key), " in any backbone list. ",
        warning ? el("a", { href: "#backbone-" + answer.id }, "Its check on the sample photos has a warning: read it above.")
          : el("a", { href: "#backbone-" + answer.id }, "See its check on the sample photos."));
      success.hidden = false;
      return;
    }
    progress.hidden = true;
    if (status === 400 && answer && typeof answer === "object" && !answer.detail) errors.show(answer);
    else if (status === 413) errors.show({ file: [answer.detail || "This file is larger than the server accepts."] });
    else refuse(VL.apiError(status, answer, code => (code === 503 ? "No worker can open the file right now. Try again in a moment."
      : "The server could not take the file (error " + code + "). Try again in a moment.")).message);
  }

  upload.addEventListener("submit", event => {
    event.preventDefault();
    if (xhr) return;
    errors.clear();
    failBox.hidden = true;
    success.hidden = true;
    const file = fileInput.files[0];
    if (!file) { errors.show({ file: ["Choose a " + MODEL_FORMATS.suffix_list + " file."] }); return; }
    if (!SUFFIXES.some(s => file.name.toLowerCase().endsWith(s))) {
      errors.show({ file: ["A backbone is a " + MODEL_FORMATS.suffix_list + " file; “" + file.name + "” is none of these."] });
      return;
    }
    if (file.size > maxBytes) { errors.show({ file: ["This file is larger than the " + bytes(maxBytes) + " a backbone may be."] }); return; }
    const size = numberValue($("b-input_size"));
    if (Number.isNaN(size)) { errors.show({ input_size: ["Enter a whole number of pixels, or leave it empty."] }); return; }
    const scaling = scalingValues(upload);
    if (scaling.errors) { errors.show(scaling.errors); return; }

    const data = new FormData();
    data.append("file", file, file.name);
    if ($("b-name").value.trim()) data.append("name", $("b-name").value.trim());
    if ($("b-output").value.trim()) data.append("output", $("b-output").value.trim());
    if (size !== null) data.append("input_size", String(size));
    Object.entries(scaling.values).forEach(([key, value]) => data.append(key, value));
    if (labelsInput.files[0]) data.append("labels", labelsInput.files[0], labelsInput.files[0].name);
    if ($("b-dataset").value) data.append("dataset", $("b-dataset").value);

    xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/backbones/");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRFToken", VL.csrfToken(upload));
    xhr.responseType = "json";
    const started = performance.now();
    xhr.upload.addEventListener("progress", e => {
      if (!e.lengthComputable) return;
      const seconds = (performance.now() - started) / 1000;
      const speed = seconds > 0.5 ? " · " + bytes(e.loaded / seconds) + "/s" : "";
      setProgress(e.loaded / e.total, "Uploading " + bytes(e.loaded) + " of " + bytes(e.total) + speed);
    });
    xhr.upload.addEventListener("load", () => { setProgress(1, ""); setChecking(); });
    xhr.addEventListener("load", () => {
      const [status, answer] = [xhr.status, xhr.response || {}];
      finish();  // forgets xhr
      uploaded(status, answer);
    });
    xhr.addEventListener("error", () => { finish(); refuse("The upload was interrupted. Check your connection and try again."); });
    xhr.addEventListener("abort", () => { finish(); progress.hidden = true; progressText.textContent = ""; });

    upload.querySelectorAll("input, select").forEach(input => { if (input.type !== "hidden") input.disabled = true; });
    uploadButton.disabled = true;
    uploadButton.textContent = "Uploading…";
    cancelButton.hidden = false;
    progress.hidden = false;
    setProgress(0, "Starting the upload…");
    xhr.send(data);
  });

  cancelButton.addEventListener("click", () => { if (xhr) xhr.abort(); });
  fileInput.addEventListener("change", () => {
    errors.clearField("file");
    const file = fileInput.files[0];
    const suffix = file && SUFFIXES.find(s => file.name.toLowerCase().endsWith(s));
    if (file && !$("b-name").value) $("b-name").placeholder = suffix ? file.name.slice(0, -suffix.length) : file.name;
  });
  upload.addEventListener("input", event => {
    if (["input_scaling", "input_mean", "input_std", "labels", "dataset"].includes(event.target.name)) errors.clearField(event.target.name);
  });

  load();
})();

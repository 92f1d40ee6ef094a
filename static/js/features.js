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
  const FORMATS = { keras: "Keras", h5: "Keras HDF5", tflite: "TensorFlow Lite" };

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
    const train = new URLSearchParams({ architecture: "transfer", backbone: b.key });
    return el("tr", { "data-backbone": b.id },
      el("td", {}, el("strong", { class: "backbone-name" }, b.name), el("br"), el("code", { class: "small" }, b.key)),
      el("td", { class: "num" }, b.input_size + "×" + b.input_size + " px", el("br"),
        el("span", { class: "small muted" }, b.channels === 1 ? "grayscale" : "colour")),
      el("td", {}, shapeText(b), el("br"), el("span", { class: "small muted" }, "from ", el("code", {}, b.output || "the output"))),
      el("td", {}, FORMATS[b.format] || b.format, el("br"), el("span", { class: "small muted", title: b.filename }, bytes(b.size_bytes))),
      el("td", { class: "small" }, b.created_at ? new Date(b.created_at).toLocaleDateString() : "—"),
      el("td", { class: "row-actions" },
        el("a", { class: "btn btn-small", href: "/train/?" + train }, "Train with it"),
        form ? el("button", { type: "button", class: "btn btn-small", "data-use": b.key }, "Extract") : null,
        remove));
  }

  function emptyRow() {
    return el("tr", { class: "empty" }, el("td", { colspan: 6 }, "No backbone uploaded yet. The built-in ones are always there."));
  }

  function render(list) {
    body.replaceChildren(...(list.length ? list.map(row) : [emptyRow()]));
    body.querySelectorAll("[data-use]").forEach(button => button.addEventListener("click", () => {
      backboneSelect.value = button.dataset.use;
      applyBackbone();
      $("extract-card").scrollIntoView({ block: "start", behavior: "smooth" });
      backboneSelect.focus({ preventScroll: true });
    }));
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
      const response = await fetch("/api/backbones/", { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error("HTTP " + response.status);
      backbones = await response.json();
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
    let response;
    try {
      response = await fetch("/api/backbones/" + b.id + "/", { method: "DELETE", credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": VL.csrfToken() } });
    } catch (err) {
      response = null;
    }
    if (response && (response.ok || response.status === 404)) {
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
    listError.textContent = response ? "“" + b.name + "” could not be deleted (error " + response.status + ")." : "The server did not answer. Check your connection and try again.";
    listError.hidden = false;
  }

  /* ---- upload ---- */

  const upload = $("backbone-form");
  const errors = VL.fieldErrors(upload);
  const fileInput = $("b-file");
  const progress = $("b-progress");
  const bar = progress.querySelector(".bar");
  const progressText = $("b-progress-text");
  const uploadButton = $("b-upload");
  const cancelButton = $("b-cancel");
  const failBox = $("b-error");
  const success = $("b-success");
  const SUFFIXES = [".keras", ".h5", ".tflite"];
  const maxBytes = Number(document.querySelector("#b-file-help [data-bytes]").dataset.bytes) || Infinity;
  let xhr = null;

  function setProgress(fraction, message) {
    const pct = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
    bar.style.width = pct + "%";
    $("b-progress-bar").setAttribute("aria-valuenow", pct);
    $("b-progress-percent").textContent = pct + "%";
    progressText.textContent = message;
  }

  function finish() {
    xhr = null;
    uploadButton.disabled = false;
    uploadButton.textContent = "Upload backbone";
    cancelButton.hidden = true;
    upload.querySelectorAll("input").forEach(input => { input.disabled = false; });
  }

  function refuse(message) {
    progress.hidden = true;
    failBox.textContent = message;
    failBox.hidden = false;
  }

  upload.addEventListener("submit", event => {
    event.preventDefault();
    if (xhr) return;
    errors.clear();
    failBox.hidden = true;
    success.hidden = true;
    const file = fileInput.files[0];
    if (!file) { errors.show({ file: ["Choose a .keras, .h5 or .tflite file."] }); return; }
    if (!SUFFIXES.some(s => file.name.toLowerCase().endsWith(s))) {
      errors.show({ file: ["A backbone is a .keras, .h5 or .tflite file; “" + file.name + "” is none of these."] });
      return;
    }
    if (file.size > maxBytes) { errors.show({ file: ["This file is larger than the " + bytes(maxBytes) + " a backbone may be."] }); return; }
    const size = numberValue($("b-input_size"));
    if (Number.isNaN(size)) { errors.show({ input_size: ["Enter a whole number of pixels, or leave it empty."] }); return; }

    const data = new FormData();
    data.append("file", file, file.name);
    if ($("b-name").value.trim()) data.append("name", $("b-name").value.trim());
    if ($("b-output").value.trim()) data.append("output", $("b-output").value.trim());
    if (size !== null) data.append("input_size", String(size));

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
    xhr.upload.addEventListener("load", () => setProgress(1, "Uploaded. A worker is opening the file to check what it gives for a photo…"));
    xhr.addEventListener("load", () => {
      const status = xhr.status;
      const answer = xhr.response || {};
      finish();
      if (status === 201) {
        progress.hidden = true;
        backbones = [answer, ...backbones.filter(b => b.id !== answer.id)];
        render(backbones);
        addOption(answer);
        upload.reset();
        $("b-name").placeholder = "the file's name";
        success.replaceChildren(el("strong", {}, "“" + answer.name + "” is ready: "),
          shapeText(answer) + " per photo at " + answer.input_size + "×" + answer.input_size + " px, from ",
          el("code", {}, answer.output || "the output"), ". Choose it as ", el("code", {}, answer.key), " in any backbone list.");
        success.hidden = false;
        return;
      }
      progress.hidden = true;
      if (status === 400 && answer && typeof answer === "object" && !answer.detail) errors.show(answer);
      else if (status === 413) errors.show({ file: [answer.detail || "This file is larger than the server accepts."] });
      else if (status === 401 || status === 403) refuse("Your session has ended: reload the page and log in again.");
      else if (status === 503) refuse(answer.detail || "No worker can open the file right now. Try again in a moment.");
      else refuse((answer && answer.detail) || "The server could not take the file (error " + status + "). Try again in a moment.");
    });
    xhr.addEventListener("error", () => { finish(); refuse("The upload was interrupted. Check your connection and try again."); });
    xhr.addEventListener("abort", () => { finish(); progress.hidden = true; progressText.textContent = ""; });

    upload.querySelectorAll("input").forEach(input => { if (input.type !== "hidden") input.disabled = true; });
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
    if (file && !$("b-name").value) $("b-name").placeholder = file.name.replace(/\.(keras|h5|tflite)$/i, "");
  });

  load();
})();

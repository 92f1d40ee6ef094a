/* The launch form: a dataset, an architecture and Start. The rest is prefilled: image size and colour
   mode follow the dataset within the chosen architecture's limits until the user edits them (the
   API's rule for a launch that leaves them out, webapp/experiments/input_defaults.py), a built-in
   dataset's suggested run preselects its architecture and settings, and grayscale input for classes
   that differ by colour is warned about. The form is sent as JSON to POST /api/jobs/, so the page and
   API clients share one validation.
   Transfer and feature architectures add a backbone (built-in, uploaded or a trained
   classifier), its weights and the mode; their input size and colours come from the backbone. */
(function () {
  "use strict";
  const { el } = window.VL;
  const form = document.getElementById("train-form");
  const problem = document.getElementById("queue-problem");
  const problemText = document.getElementById("queue-problem-text");
  const queueMessage = problemText ? problemText.textContent : "";
  const start = document.getElementById("train-start");
  let queueOk = !problem || problem.hidden;
  let launchProblem = null; // the last 503's sentence, shown until the next attempt
  let submitting = false;

  function updateStart() {
    if (start) start.disabled = submitting || !queueOk;
  }

  function showBanner() {
    problem.hidden = queueOk && !launchProblem;
    problemText.textContent = launchProblem || queueMessage;
  }

  VL.poll("/api/queue-status/", function (status) {
    queueOk = status.ok;
    showBanner();
    updateStart();
  }, { interval: 5000, hiddenInterval: 30000 });

  if (!form) return; // no dataset yet: the page only links to Datasets

  const $ = id => document.getElementById(id);
  const datasetSelect = $("train-dataset");
  const archRadios = [...form.querySelectorAll("input[name=architecture]")];
  const imageSize = $("f-image_size");
  const colorMode = $("f-color_mode");
  const earlyOn = $("f-early_stopping_on");
  const patience = $("f-early_stopping");
  const advanced = $("advanced");
  const errorBox = $("form-errors");
  const errorList = $("form-error-list");

  const backboneSelect = $("f-backbone");
  const weightsSelect = $("f-weights");
  const modeSelect = $("f-mode");
  const learningRate = $("f-learning_rate");
  const LEARNING_RATE = learningRate.value;
  const FINETUNE_RATE = "0.00001"; // large steps would wreck the pretrained weights

  /* Fields the user changed by hand keep their value when the architecture changes. */
  const epochsInput = $("f-epochs");
  const edited = new Set();
  [imageSize, colorMode, learningRate, epochsInput].forEach(input => input.addEventListener("input", () => edited.add(input.name)));
  let userBackbone = null; // the backbone chosen by hand (or in the link); presets show theirs without forgetting it
  backboneSelect.addEventListener("change", () => { userBackbone = backboneSelect.value; });

  function chosenArch() {
    return archRadios.find(r => r.checked) || null;
  }

  function chosenDataset() {
    const option = datasetSelect.selectedOptions[0];
    return option && option.value ? option : null;
  }

  /* The input the chosen dataset calls for with the chosen architecture: its typical side within the
     architecture's limits (at least its smallest size, at most the size it proposes) and its colours. */
  function datasetInput(arch) {
    const option = chosenDataset();
    const min = Number(arch.dataset.minSize), cap = Number(arch.dataset.imageSize);
    const side = option && option.dataset.side ? Number(option.dataset.side) : null;
    return {
      side, size: side === null ? cap : Math.max(min, Math.min(side, cap)),
      colorMode: option && option.dataset.colorMode ? option.dataset.colorMode : arch.dataset.colorMode,
    };
  }

  function applyArchitectureDefaults() {
    const arch = chosenArch();
    if (!arch) return;
    const input = datasetInput(arch);
    if (!edited.has("image_size")) imageSize.value = input.size;
    if (!edited.has("color_mode")) colorMode.value = input.colorMode;
    imageSize.min = arch.dataset.minSize;
    const from = input.side === null ? "" : "This dataset's images are about " + input.side + " px, so " + input.size + " px is proposed. ";
    $("image-size-help").textContent = from + arch.dataset.title + " needs at least " + arch.dataset.minSize +
      " px and proposes at most " + arch.dataset.imageSize + " px. Every image is resized to this square.";
    warnColour();
  }

  /* Grayscale input for classes told apart by their colour: said under the field and next to Start. */
  function warnColour() {
    const option = chosenDataset(), arch = chosenArch();
    const show = Boolean(option && arch && !usesBackbone(arch) && option.dataset.differsByColour === "1" &&
      colorMode.value === "grayscale");
    $("colour-warning").hidden = !show;
    $("colour-warning-start").hidden = !show;
  }

  /* A built-in dataset's suggested run: shown under the dataset, and prefilled unless the person already
     chose an architecture or edited the fields it sets. Values it prefilled go back to their defaults when
     another dataset is picked. */
  const prefilled = new Map(); // input -> the value the suggestion put there
  let suggestedArch = null; // the radio the suggestion checked (not the person)

  function suggestion() {
    const option = chosenDataset();
    if (!option || !option.dataset.suggestion) return null;
    try { return JSON.parse(option.dataset.suggestion); } catch (err) { return null; }
  }

  function describeSuggestion() {
    const s = suggestion();
    const box = $("dataset-suggestion");
    box.hidden = !s;
    if (!s) return;
    $("suggestion-text").textContent = s.title + " (" + s.architecture + ") with " + s.settings + ".";
    $("suggestion-why").textContent = s.why;
  }

  function undoSuggestion() {
    prefilled.forEach((value, input) => {
      if (!edited.has(input.name) && input.value === String(value)) input.value = input.defaultValue;
    });
    prefilled.clear();
  }

  function applySuggestion(force) {
    const s = suggestion();
    if (!s) return;
    const radio = archRadios.find(r => r.value === s.architecture);
    const current = chosenArch();
    if (radio && (force || !current || current === suggestedArch)) {
      radio.checked = true;
      suggestedArch = radio;
    }
    if (force) ["image_size", "color_mode", ...Object.keys(s.params)].forEach(name => edited.delete(name));
    applySuggestedParams();
    applyArchitectureDefaults();
    applyBackbone();
  }

  /* The suggestion's settings belong to its architecture: set while that one is chosen, undone otherwise. */
  function applySuggestedParams() {
    undoSuggestion();
    const s = suggestion(), arch = chosenArch();
    if (!s || !arch || arch.value !== s.architecture) return;
    Object.entries(s.params).forEach(([name, value]) => {
      const input = $("f-" + name);
      if (!input || edited.has(name)) return;
      input.value = value;
      prefilled.set(input, value);
    });
  }

  function usesBackbone(arch) {
    return Boolean(arch) && arch.dataset.family !== "scratch";
  }

  function backboneOption() {
    return backboneSelect.selectedOptions[0] || null;
  }

  function backboneTitle(option) {
    return option ? option.textContent.trim().split(" · ")[0].split(" (")[0] : "";
  }

  /* Show the backbone, weights and mode that the chosen architecture takes, and nothing else. */
  function applyBackbone() {
    const arch = chosenArch();
    const on = usesBackbone(arch);
    warnColour();
    $("backbone-panel").hidden = !on;
    $("input-fields").hidden = on;
    $("input-from-backbone").hidden = !on;
    if (!on) {
      if (!edited.has("learning_rate")) learningRate.value = prefilled.has(learningRate) ? prefilled.get(learningRate) : LEARNING_RATE;
      return;
    }
    const fixed = arch.dataset.fixedBackbone === "1";
    backboneSelect.value = fixed || !userBackbone ? arch.dataset.defaultBackbone : userBackbone;
    const option = backboneOption();
    $("backbone-field").hidden = fixed;
    const fixedLine = $("backbone-fixed");
    fixedLine.hidden = !fixed;
    if (fixed) {
      fixedLine.replaceChildren(el("strong", {}, arch.dataset.title), " always uses ", el("strong", {}, option ? option.textContent.trim() : arch.dataset.defaultBackbone),
        ". For another backbone (one you uploaded, or a classifier you trained), choose Transfer learning (any backbone).");
    }
    $("backbone-help").textContent = option ? option.dataset.description : "";
    $("weights-field").hidden = !option || option.dataset.weights !== "1";
    const transfer = arch.dataset.family === "transfer";
    $("mode-field").hidden = !transfer;
    const keras = !option || option.dataset.fineTunes === "1";
    const finetune = modeSelect.querySelector('option[value="finetune"]');
    finetune.disabled = !keras;
    if (!keras && modeSelect.value === "finetune") modeSelect.value = "extract";
    $("mode-help").textContent = !keras
      ? "A TensorFlow Lite backbone is frozen, so it cannot be fine-tuned: the head trains on its cached features."
      : modeSelect.value === "finetune"
        ? "Slower: the photos go through the backbone on every epoch, and its last block learns too, with a small learning rate."
        : "Fast: the backbone runs once over the photos (or its cached features are reused), then only the head trains.";
    if (!edited.has("learning_rate")) learningRate.value = transfer && modeSelect.value === "finetune" ? FINETUNE_RATE : LEARNING_RATE;
    if (option) {
      $("input-from-backbone").textContent = "Every photo is resized to " + option.dataset.size + "×" + option.dataset.size + " px, " +
        (option.dataset.channels === "1" ? "grayscale" : "colour") + ": the size and colours the backbone reads.";
    }
  }

  function number(input) {
    return input.value === "" ? null : Number(input.value);
  }

  function describeDataset() {
    const option = chosenDataset();
    const info = $("dataset-info");
    if (!option) {
      info.replaceChildren("Your ready classification datasets. ", el("a", { href: "/datasets/" }, "Add another"), ".");
      return;
    }
    info.replaceChildren(el("strong", {}, option.dataset.classes + " classes"), ": " + option.dataset.classNames + " · ",
      el("a", { href: "/datasets/" + option.value + "/" }, "see the dataset"));
    // A class too small for the split (webapp/datasets/checks.py): said now, not after Start.
    if (option.dataset.warning) info.append(el("span", { class: "dataset-choice-warning", role: "alert" }, option.dataset.warning));
  }

  /* One line under Advanced and one next to Start, so nobody has to open Advanced to know. */
  function summarize() {
    const mode = colorMode.value === "grayscale" ? "grayscale" : "colour";
    const augment = [$("f-augment_flip").checked ? "flip" : null,
      Number($("f-augment_rotation").value) > 0 ? "rotation " + $("f-augment_rotation").value : null,
      Number($("f-augment_zoom").value) > 0 ? "zoom " + $("f-augment_zoom").value : null].filter(Boolean);
    const queue = $("f-queue").selectedOptions[0].value;
    const arch = chosenArch(), dataset = chosenDataset();
    const option = backboneOption();
    const onBackbone = usesBackbone(arch) && option;
    const parts = [
      onBackbone ? backboneTitle(option) + (arch.dataset.family === "transfer" ? " (" + modeSelect.value + ")" : "")
        : (imageSize.value ? imageSize.value + " px " : "default size, ") + mode,
      $("f-epochs").value + " epochs", "batch " + $("f-batch_size").value,
      $("f-optimizer").selectedOptions[0].textContent + " at " + $("f-learning_rate").value,
      augment.length ? "augment: " + augment.join(", ") : "no augmentation",
      earlyOn.checked ? "early stopping after " + patience.value : null,
      "seed " + $("f-seed").value, queue === "auto" ? "CPU or GPU" : queue.toUpperCase(),
    ].filter(Boolean);
    $("advanced-summary").textContent = parts.join(" · ");
    const line = $("run-summary");
    if (!arch || !dataset) {
      line.textContent = !arch && !dataset ? "Choose a dataset and an architecture."
        : !arch ? "Choose an architecture." : "Choose a dataset.";
      line.classList.add("muted");
      return;
    }
    line.classList.remove("muted");
    line.replaceChildren(el("strong", {}, arch.dataset.title), " on ", el("strong", {}, dataset.dataset.name),
      " · " + parts.slice(0, 3).join(" · "));
  }

  /* ---- errors ---- */

  const LABELS = {};
  form.querySelectorAll("[data-field]").forEach(node => { LABELS[node.dataset.field] = node.dataset.label; });

  function clearErrors() {
    errorBox.hidden = true;
    errorList.replaceChildren();
    form.querySelectorAll("[data-error-for]").forEach(p => { p.hidden = true; p.textContent = ""; });
    form.querySelectorAll(".field.has-error").forEach(f => f.classList.remove("has-error"));
    form.querySelectorAll("[aria-invalid]").forEach(i => i.removeAttribute("aria-invalid"));
  }

  function text(messages) {
    return Array.isArray(messages) ? messages.join(" ") : typeof messages === "object" ? JSON.stringify(messages) : String(messages);
  }

  /* errors: {field: [message]}; the API puts dataset/architecture at the top, the rest under params. */
  function showErrors(errors) {
    const flat = [];
    Object.entries(errors).forEach(([field, messages]) => {
      if (field === "params" && messages && !Array.isArray(messages) && typeof messages === "object") {
        Object.entries(messages).forEach(([f, m]) => flat.push([f, text(m)]));
      } else {
        flat.push([field, text(messages)]);
      }
    });
    let first = null;
    flat.forEach(([field, message]) => {
      const slot = form.querySelector('[data-error-for="' + CSS.escape(field) + '"]');
      if (slot) {
        slot.textContent = message;
        slot.hidden = false;
        const wrapper = slot.closest(".field");
        wrapper.classList.add("has-error");
        const input = wrapper.querySelector("input:not([type=checkbox]):not([type=radio]), select");
        if (input) input.setAttribute("aria-invalid", "true");
        if (advanced.contains(slot)) advanced.open = true;
        first = first || wrapper;
      }
      const label = field === "non_field_errors" || field === "detail" ? "" : (LABELS[field] || field.replace(/_/g, " ")) + ": ";
      errorList.append(el("li", {}, label ? el("strong", {}, label) : null, message));
    });
    errorBox.hidden = false;
    errorBox.scrollIntoView({ block: "center", behavior: "smooth" });
    errorBox.focus({ preventScroll: true });
  }

  function csrfToken() {
    const input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  /* Empty number fields are errors the server would phrase as "A valid number is required";
     image size alone may be empty (the architecture's default). */
  function collect() {
    const params = VL.declaredParams(form), missing = {};
    const numbers = { epochs: "int", batch_size: "int", learning_rate: "float", augment_rotation: "float", augment_zoom: "float", seed: "int" };
    Object.keys(numbers).forEach(name => {
      const value = number($("f-" + name));
      if (value === null || Number.isNaN(value)) missing[name] = ["Enter a number."];
      else params[name] = value;
    });
    const size = number(imageSize);
    if (size !== null && !Number.isNaN(size)) params.image_size = size;
    else if (imageSize.value !== "") missing.image_size = ["Enter a number."];
    params.color_mode = colorMode.value;
    params.optimizer = $("f-optimizer").value;
    params.augment_flip = $("f-augment_flip").checked;
    if (earlyOn.checked) {
      const p = number(patience);
      if (p === null || Number.isNaN(p)) missing.early_stopping = ["Enter how many epochs to wait."];
      else params.early_stopping = p;
    } else {
      params.early_stopping = null;
    }
    const dataset = chosenDataset(), arch = chosenArch();
    if (usesBackbone(arch)) {
      // The backbone decides the input: the server takes its size and colours.
      delete params.image_size;
      delete params.color_mode;
      const option = backboneOption();
      if (arch.dataset.fixedBackbone !== "1" && option) params.backbone = option.value;
      if (option && option.dataset.weights === "1") params.weights = weightsSelect.value;
      if (arch.dataset.family === "transfer") params.mode = modeSelect.value;
    }
    const body = { kind: "train", queue: $("f-queue").value, params };
    body.dataset = dataset ? Number(dataset.value) : null;
    if (arch) body.architecture = arch.value;
    return { body, missing };
  }

  async function submit(event) {
    event.preventDefault();
    if (submitting) return;
    clearErrors();
    launchProblem = null;
    showBanner();
    const { body, missing } = collect();
    if (Object.keys(missing).length) { showErrors({ params: missing }); return; }
    submitting = true;
    updateStart();
    start.textContent = "Starting…";
    let response, data = {};
    try {
      response = await fetch("/api/jobs/", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(body),
      });
      data = await response.json().catch(() => ({}));
    } catch (err) {
      showErrors({ detail: ["The server did not answer. Check your connection and try again."] });
      done();
      return;
    }
    if (response.status === 201) {
      window.location.assign("/jobs/" + data.id + "/");
      return; // keep the button disabled while the job page loads
    }
    if (response.status === 503) {
      launchProblem = data.detail || "The job queue is not reachable, so the run was not started.";
      showBanner();
      problem.scrollIntoView({ block: "center", behavior: "smooth" });
    } else if (response.status === 400) {
      showErrors(data);
    } else if (response.status === 401 || response.status === 403) {
      showErrors({ detail: [data.detail || "Your session has ended: reload the page and log in again."] });
    } else {
      showErrors({ detail: [data.detail || "The server could not start the run (error " + response.status + "). Try again in a moment."] });
    }
    done();
  }

  function done() {
    submitting = false;
    start.textContent = "Start training";
    updateStart();
  }

  /* ---- wiring ---- */

  const query = new URLSearchParams(window.location.search);
  const wanted = query.get("architecture");
  const preset = archRadios.find(r => r.value === wanted);
  if (preset) preset.checked = true;
  const wantedBackbone = query.get("backbone");
  if (wantedBackbone && [...backboneSelect.options].some(o => o.value === wantedBackbone)) {
    backboneSelect.value = wantedBackbone;
    userBackbone = wantedBackbone;
  }

  archRadios.forEach(r => r.addEventListener("change", () => {
    suggestedArch = null; // the person's choice from now on
    applySuggestedParams();
    applyArchitectureDefaults();
    applyBackbone();
    const slot = form.querySelector('[data-error-for="architecture"]');
    if (!slot.hidden) { slot.hidden = true; slot.closest(".field").classList.remove("has-error"); }
    summarize();
  }));
  datasetSelect.addEventListener("change", () => {
    undoSuggestion();
    applySuggestion(false);
    describeSuggestion();
    applyArchitectureDefaults();
    describeDataset();
    const slot = form.querySelector('[data-error-for="dataset"]');
    if (!slot.hidden) { slot.hidden = true; slot.closest(".field").classList.remove("has-error"); }
    summarize();
  });
  earlyOn.addEventListener("change", () => { patience.disabled = !earlyOn.checked; summarize(); });
  [backboneSelect, modeSelect].forEach(select => select.addEventListener("change", () => {
    applyBackbone();
    const slot = form.querySelector('[data-error-for="' + select.name + '"]');
    if (!slot.hidden) { slot.hidden = true; slot.closest(".field").classList.remove("has-error"); }
    summarize();
  }));
  form.addEventListener("input", summarize);
  form.addEventListener("change", summarize);
  form.addEventListener("submit", submit);

  imageSize.placeholder = "from the dataset";
  colorMode.addEventListener("change", warnColour);
  $("suggestion-use").addEventListener("click", () => { undoSuggestion(); applySuggestion(true); summarize(); });
  if (!preset) applySuggestion(false); // a link naming an architecture wins over the suggestion
  describeSuggestion();
  applyArchitectureDefaults();
  applyBackbone();
  describeDataset();
  summarize();
})();

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
  const launch = VL.launchForm({ collect, summary, runLine });
  if (!launch) return;
  const { $, form, chosenDataset, backboneOption, backboneTitle } = launch;
  const datasetSelect = $("train-dataset");
  const archRadios = [...form.querySelectorAll("input[name=architecture]")];
  const imageSize = $("f-image_size");
  const colorMode = $("f-color_mode");
  const backboneSelect = $("f-backbone");
  const modeSelect = $("f-mode");
  const learningRate = $("f-learning_rate");
  const LEARNING_RATE = learningRate.value;
  // Fine-tuning's own defaults (jobs/ml/config.py MODE_DEFAULTS): its learning rate is proposed here.
  const FINETUNE_RATE = String(VL.json("mode-defaults").finetune.learning_rate);

  /* Fields the user changed by hand keep their value when the architecture changes. */
  const epochsInput = $("f-epochs");
  const edited = new Set();
  [imageSize, colorMode, learningRate, epochsInput].forEach(input => input.addEventListener("input", () => edited.add(input.name)));
  let userBackbone = null; // the backbone chosen by hand (or in the link); presets show theirs without forgetting it
  backboneSelect.addEventListener("change", () => { userBackbone = backboneSelect.value; });

  function chosenArch() {
    return archRadios.find(r => r.checked) || null;
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
    $("image_size-help").textContent = from + arch.dataset.title + " needs at least " + arch.dataset.minSize +
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
    launch.showBackbone();
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

  function describeDataset() {
    const info = launch.describeDataset("classification", option =>
      [el("strong", {}, option.dataset.classes + " classes"), ": " + option.dataset.classNames + " · "]);
    // A class too small for the split (webapp/datasets/checks.py): said now, not after Start.
    const option = chosenDataset();
    if (option && option.dataset.warning) {
      info.append(el("span", { class: "dataset-choice-warning", role: "alert" }, option.dataset.warning));
    }
  }

  /* One line under Advanced and one next to Start, so nobody has to open Advanced to know. */
  function summary() {
    const mode = colorMode.value === "grayscale" ? "grayscale" : "colour";
    const augment = [$("f-augment_flip").checked ? "flip" : null,
      Number($("f-augment_rotation").value) > 0 ? "rotation " + $("f-augment_rotation").value : null,
      Number($("f-augment_zoom").value) > 0 ? "zoom " + $("f-augment_zoom").value : null].filter(Boolean);
    const queue = $("f-queue").selectedOptions[0].value;
    const arch = chosenArch();
    const option = backboneOption();
    const onBackbone = usesBackbone(arch) && option;
    return [
      onBackbone ? backboneTitle(option) + (arch.dataset.family === "transfer" ? " (" + modeSelect.value + ")" : "")
        : (imageSize.value ? imageSize.value + " px " : "default size, ") + mode,
      $("f-epochs").value + " epochs", "batch " + $("f-batch_size").value,
      $("f-optimizer").selectedOptions[0].textContent + " at " + $("f-learning_rate").value,
      augment.length ? "augment: " + augment.join(", ") : "no augmentation",
      VL.earlyStopping(),
      "seed " + $("f-seed").value, queue === "auto" ? "CPU or GPU" : queue.toUpperCase(),
    ].filter(Boolean);
  }

  function runLine(parts) {
    const arch = chosenArch(), dataset = chosenDataset();
    if (!arch || !dataset) {
      return !arch && !dataset ? "Choose a dataset and an architecture." : !arch ? "Choose an architecture." : "Choose a dataset.";
    }
    return [el("strong", {}, arch.dataset.title), " on ", el("strong", {}, dataset.dataset.name), " · " + parts.slice(0, 3).join(" · ")];
  }

  /* The backbone decides a transfer model's input (the server takes its size and colours), and only
     transfer models have a mode; a preset's fixed backbone is its own. */
  function collect(body, missing) {
    const arch = chosenArch(), params = body.params;
    if (!chosenDataset()) missing.dataset = ["Choose a dataset."];
    if (arch) body.architecture = arch.value;
    if (usesBackbone(arch)) {
      delete params.image_size;
      delete params.color_mode;
      if (arch.dataset.fixedBackbone === "1") delete params.backbone;
    } else {
      delete params.backbone;
      delete params.weights;
    }
    if (!arch || arch.dataset.family !== "transfer") delete params.mode;
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

  // A changed field loses its error (VL.launcher), and the summary follows every change (VL.launchForm).
  archRadios.forEach(r => r.addEventListener("change", () => {
    suggestedArch = null; // the person's choice from now on
    applySuggestedParams();
    applyArchitectureDefaults();
    applyBackbone();
  }));
  datasetSelect.addEventListener("change", () => {
    undoSuggestion();
    applySuggestion(false);
    describeSuggestion();
    applyArchitectureDefaults();
    describeDataset();
  });
  [backboneSelect, modeSelect].forEach(select => select.addEventListener("change", applyBackbone));
  colorMode.addEventListener("change", warnColour);
  $("suggestion-use").addEventListener("click", () => { undoSuggestion(); applySuggestion(true); launch.summarize(); });
  if (!preset) applySuggestion(false); // a link naming an architecture wins over the suggestion
  describeSuggestion();
  applyArchitectureDefaults();
  applyBackbone();
  describeDataset();
  launch.summarize();
})();

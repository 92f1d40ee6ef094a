/* The caption-model launch form: a caption dataset, a backbone, and Start. Everything else has
   the API's defaults, folded under Advanced; the run goes to POST /api/jobs/ as train_captioner. */
(function () {
  "use strict";
  const { el, numberValue } = window.VL;
  const form = document.getElementById("caption-form");
  if (!form) return; // no caption dataset yet: the page only links to Datasets

  const $ = id => document.getElementById(id);
  const datasetSelect = $("caption-dataset");
  const backbone = $("f-backbone");
  const weights = $("f-weights");
  const earlyOn = $("f-early_stopping_on");
  const patience = $("f-early_stopping");

  function chosenDataset() {
    const option = datasetSelect.selectedOptions[0];
    return option && option.value ? option : null;
  }

  function backboneTitle(option) {
    return option ? option.textContent.trim().split(" · ")[0].split(" (")[0] : "";
  }

  function applyBackbone() {
    const option = backbone.selectedOptions[0];
    $("backbone-help").textContent = option ? option.dataset.description : "";
    $("weights-field").hidden = !option || option.dataset.weights !== "1";
    checkWeights();
  }

  /* ImageNet weights that are not on this server (data-weights-present="0", from the page): a job would
     download them first, which fails after a few seconds on a server without internet. Say so before
     Start, and offer a backbone that works here, or random weights when none does. */
  function checkWeights() {
    const option = backbone.selectedOptions[0];
    const missing = !!option && option.dataset.weightsPresent === "0" && weights.value === "imagenet";
    $("weights-missing").hidden = !missing;
    if (!missing) return;
    const mb = option.dataset.weightsMb;
    $("weights-missing-title").textContent = "The ImageNet weights of " + backboneTitle(option) + " are not on this server.";
    $("weights-missing-text").textContent = "A job would have to download them first" + (mb ? " (" + mb + " MB)" : "") +
      ", which fails on a server without internet.";
    const working = [...backbone.options].find(o => o.dataset.weightsPresent !== "0");
    const offer = $("use-working-backbone");
    offer.textContent = working ? "Use " + backboneTitle(working) + " instead" : "Use random weights instead";
    offer.onclick = () => {
      if (working) { backbone.value = working.value; weights.value = "imagenet"; } else { weights.value = "random"; }
      applyBackbone();
      summarize();
    };
  }

  function describeDataset() {
    const option = chosenDataset();
    const info = $("dataset-info");
    if (!option) {
      info.replaceChildren("Your ready caption datasets. ", el("a", { href: "/datasets/" }, "Add another"), ".");
      return;
    }
    const items = Number(option.dataset.items), captions = Number(option.dataset.captions);
    info.replaceChildren(el("strong", {}, items.toLocaleString() + " photos"), ", " + captions.toLocaleString() + " captions (" +
      (items ? (captions / items).toFixed(1) : "0") + " per photo) · ", el("a", { href: "/datasets/" + option.value + "/" }, "see the dataset"));
  }

  function summarize() {
    const option = backbone.selectedOptions[0];
    const parts = [
      $("f-epochs").value + " epochs", "batch " + $("f-batch_size").value, "learning rate " + $("f-learning_rate").value,
      earlyOn.checked ? "early stopping after " + patience.value : "no early stopping",
      "words seen " + $("f-min_word_count").value + "+ times",
      $("f-max_length").value ? "at most " + $("f-max_length").value + " words" : "automatic length",
      "beam width " + $("f-beam_width").value, "seed " + $("f-seed").value,
    ];
    $("advanced-summary").textContent = parts.join(" · ");
    const dataset = chosenDataset();
    const line = $("run-summary");
    if (!dataset) {
      line.textContent = "Choose a caption dataset.";
      line.classList.add("muted");
      return;
    }
    line.classList.remove("muted");
    const weightsNote = option && option.dataset.weights === "1" && weights.value === "random" ? " (random weights)" : "";
    line.replaceChildren("Captions of ", el("strong", {}, dataset.dataset.name), " from ", el("strong", {}, backboneTitle(option) + weightsNote),
      " features · " + parts.slice(0, 2).join(" · "));
  }

  function collect() {
    const params = VL.declaredParams(form), missing = {};
    ["epochs", "batch_size", "learning_rate", "min_word_count", "beam_width", "seed"].forEach(name => {
      const value = numberValue($("f-" + name));
      if (value === null || Number.isNaN(value)) missing[name] = ["Enter a number."];
      else params[name] = value;
    });
    const maxLength = numberValue($("f-max_length"));
    if (maxLength !== null && !Number.isNaN(maxLength)) params.max_length = maxLength;
    else if ($("f-max_length").value !== "" || $("f-max_length").validity.badInput) missing.max_length = ["Enter a number, or leave it empty."];
    else params.max_length = null;
    if (earlyOn.checked) {
      const p = numberValue(patience);
      if (p === null || Number.isNaN(p)) missing.early_stopping = ["Enter how many epochs to wait."];
      else params.early_stopping = p;
    } else {
      params.early_stopping = null;
    }
    const option = backbone.selectedOptions[0];
    if (option) params.backbone = option.value;
    if (option && option.dataset.weights === "1") params.weights = weights.value;
    const dataset = chosenDataset();
    if (!dataset) missing.dataset = ["Choose a caption dataset."];
    const body = { kind: "train_captioner", architecture: "merge", queue: $("f-queue").value, params,
      dataset: dataset ? Number(dataset.value) : null };
    return { body, missing };
  }

  VL.launcher(form, { button: $("caption-start"), collect });

  backbone.addEventListener("change", applyBackbone);
  weights.addEventListener("change", checkWeights);
  datasetSelect.addEventListener("change", describeDataset);
  earlyOn.addEventListener("change", () => { patience.disabled = !earlyOn.checked; });
  form.addEventListener("input", summarize);
  form.addEventListener("change", summarize);
  applyBackbone();
  describeDataset();
  summarize();
})();

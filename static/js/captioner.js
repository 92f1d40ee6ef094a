/* The caption-model launch form: a caption dataset, a backbone, and Start. Everything else has
   the API's defaults, folded under Advanced (launch-form.js sends it as train_captioner); this adds
   the check that the backbone's ImageNet weights are on this server. */
(function () {
  "use strict";
  const { el } = window.VL;
  const launch = VL.launchForm({ collect, summary, runLine });
  if (!launch) return;
  const { $, chosenDataset, backboneOption, backboneTitle } = launch;
  const backbone = $("f-backbone");
  const weights = $("f-weights");

  function applyBackbone() {
    launch.showBackbone();
    checkWeights();
  }

  /* ImageNet weights that are not on this server (data-weights-present="0", from the page): a job would
     download them first, which fails after a few seconds on a server without internet. Say so before
     Start, and offer a backbone that works here, or random weights when none does. */
  function checkWeights() {
    const option = backboneOption();
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
      launch.summarize();
    };
  }

  function describeDataset() {
    launch.describeDataset("caption", option => {
      const items = Number(option.dataset.items), captions = Number(option.dataset.captions);
      return [el("strong", {}, items.toLocaleString() + " photos"), ", " + captions.toLocaleString() + " captions (" +
        (items ? (captions / items).toFixed(1) : "0") + " per photo) · "];
    });
  }

  function summary() {
    return [
      $("f-epochs").value + " epochs", "batch " + $("f-batch_size").value, "learning rate " + $("f-learning_rate").value,
      VL.earlyStopping() || "no early stopping",
      "words seen " + $("f-min_word_count").value + "+ times",
      $("f-max_length").value ? "at most " + $("f-max_length").value + " words" : "automatic length",
      "beam width " + $("f-beam_width").value, "seed " + $("f-seed").value,
    ];
  }

  function runLine(parts) {
    const dataset = chosenDataset(), option = backboneOption();
    if (!dataset) return "Choose a caption dataset.";
    const weightsNote = option && option.dataset.weights === "1" && weights.value === "random" ? " (random weights)" : "";
    return ["Captions of ", el("strong", {}, dataset.dataset.name), " from ", el("strong", {}, backboneTitle(option) + weightsNote),
      " features · " + parts.slice(0, 2).join(" · ")];
  }

  function collect(body, missing) {
    body.architecture = "merge";
    if (!chosenDataset()) missing.dataset = ["Choose a caption dataset."];
  }

  backbone.addEventListener("change", applyBackbone);
  weights.addEventListener("change", checkWeights);
  $("caption-dataset").addEventListener("change", describeDataset);
  applyBackbone();
  describeDataset();
  launch.summarize();
})();

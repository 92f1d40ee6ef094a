/* What the training and caption launch forms share (templates/experiments/launch.html): the
   checkboxes that turn a parameter on, the chosen dataset and backbone, the weights choice, the
   parameters drawn from the declarations, and sending it all with VL.launcher. A page's script
   (train.js, captioner.js) adds what only its kind has through VL.launchForm's hooks:
   collect(body, missing) finishes the request, summary() returns the parts of the Advanced line,
   runLine(dataset) the line next to Start. */
(function () {
  "use strict";
  const $ = id => document.getElementById(id);

  function backboneTitle(option) {
    return option ? option.textContent.trim().split(" · ")[0].split(" (")[0] : "";
  }

  function launchForm(hooks) {
    const form = $("launch-form");
    if (!form) return null; // no dataset yet: the page only links to Datasets
    const datasetSelect = form.querySelector("select[name=dataset]");
    const backbone = $("f-backbone"), weights = $("f-weights");

    function chosenDataset() {
      const option = datasetSelect.selectedOptions[0];
      return option && option.value ? option : null;
    }
    function backboneOption() { return backbone.selectedOptions[0] || null; }
    function hasWeightsChoice(option) { return Boolean(option) && option.dataset.weights === "1"; }

    /* The line under the dataset menu: what `describe(option)` says of the chosen dataset and a link to
       it, or, with none chosen, which datasets the menu lists (your ready `kind` ones) and where to add one.
       Returns the line, for a page to add to. */
    function describeDataset(kind, describe) {
      const option = chosenDataset();
      const info = $("dataset-info");
      if (!option) {
        info.replaceChildren("Your ready " + kind + " datasets. ", VL.el("a", { href: "/datasets/" }, "Add another"), ".");
      } else {
        info.replaceChildren(...describe(option), VL.el("a", { href: "/datasets/" + option.value + "/" }, "see the dataset"));
      }
      return info;
    }

    /* The backbone's description and, for built-ins, the weights choice. */
    function showBackbone() {
      const option = backboneOption();
      $("backbone-help").textContent = option ? option.dataset.description : "";
      $("weights-field").hidden = !hasWeightsChoice(option);
    }

    function collect() {
      const { params, missing } = VL.declaredParams(form);
      const option = backboneOption();
      if (option) params.backbone = option.value;
      if (hasWeightsChoice(option)) params.weights = weights.value;
      const dataset = chosenDataset();
      // Not form.dataset.kind: a form names its controls as properties, and one is called "dataset".
      const body = { kind: form.getAttribute("data-kind"), queue: $("f-queue").value, params,
        dataset: dataset ? Number(dataset.value) : null };
      hooks.collect(body, missing);
      return { body, missing };
    }

    function summarize() {
      const parts = hooks.summary();
      $("advanced-summary").textContent = parts.join(" · ");
      const line = $("run-summary"), ready = hooks.runLine(parts);
      line.classList.toggle("muted", typeof ready === "string");
      if (typeof ready === "string") line.textContent = ready;
      else line.replaceChildren(...ready);
    }

    form.querySelectorAll("[data-toggles]").forEach(box => box.addEventListener("change", () => {
      form.elements[box.dataset.toggles].disabled = !box.checked;
    }));
    const launcher = VL.launcher(form, { button: $("launch-start"), collect });
    form.addEventListener("input", summarize);
    form.addEventListener("change", summarize);
    return { form, $, chosenDataset, describeDataset, backboneOption, backboneTitle, showBackbone, summarize,
      errors: launcher.errors };
  }

  /* "early stopping after 5", or null when its checkbox turned it off. */
  function earlyStopping() {
    const on = $("f-early_stopping_on");
    return on && on.checked ? "early stopping after " + $("f-early_stopping").value : null;
  }

  Object.assign(window.VL, { launchForm, earlyStopping });
})();

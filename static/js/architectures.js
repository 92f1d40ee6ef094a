/* The model zoo: each card's form asks a worker for the layer table (model.summary()) at the
   reference shape or a chosen image size, colour mode and class count. */
(function () {
  "use strict";
  const { el } = window.VL;

  function setUp(card) {
    const name = card.dataset.arch;
    const form = card.querySelector(".arch-shape-form");
    const box = card.querySelector(".arch-layers");
    const show = form.querySelector(".show-layers");
    const hide = form.querySelector(".hide-layers");
    let sequence = 0;

    async function load(event) {
      event.preventDefault();
      const size = form.elements.image_size.value, classes = form.elements.classes.value;
      const mode = form.elements.color_mode.value;
      const shapeText = size + "×" + size + "×" + (mode === "grayscale" ? 1 : 3) + ", " + classes + " classes";
      const query = new URLSearchParams({ image_size: size, color_mode: mode, classes });
      const mine = ++sequence;
      box.hidden = false;
      box.classList.add("loading");
      show.disabled = true;
      show.setAttribute("aria-expanded", "true");
      if (!box.firstChild) box.replaceChildren(el("p", { class: "muted small" }, "A worker is building the model at " + shapeText + "…"));
      let data = null, problem = null;
      try {
        data = await VL.api("/api/architectures/" + encodeURIComponent(name) + "/summary/?" + query, {
          fallback: code => (code ? "The worker could not build it (error " + code + ")." : "The server did not answer.") });
      } catch (err) {
        problem = err.message;
      }
      if (mine !== sequence) return;
      show.disabled = false;
      box.classList.remove("loading");
      hide.hidden = false;
      show.textContent = "Update layers";
      if (!problem) {
        box.replaceChildren(
          el("p", { class: "layers-caption" }, el("strong", {}, Number(data.total_params).toLocaleString() + " parameters"), " at " + shapeText),
          VL.summaryTable(data));
      } else {
        box.replaceChildren(el("div", { class: "alert alert-error", role: "alert" }, problem));
      }
    }

    form.addEventListener("submit", load);
    hide.addEventListener("click", () => {
      sequence++;
      box.hidden = true;
      box.replaceChildren();
      hide.hidden = true;
      show.disabled = false;
      show.textContent = "Show layers";
      show.setAttribute("aria-expanded", "false");
    });
    const pick = form.elements.from_dataset;
    pick.addEventListener("change", () => {
      const option = pick.selectedOptions[0];
      if (option && option.dataset.classes) form.elements.classes.value = option.dataset.classes;
    });
    form.elements.classes.addEventListener("input", () => { pick.value = ""; });
    return pick;
  }

  const pickers = [...document.querySelectorAll(".arch-card")].map(setUp);

  /* "As in a dataset": the class counts of the user's ready classification datasets (the newest 200:
     a picker, not an inventory). */
  VL.api("/api/datasets/?page_size=200")
    .catch(() => ({ results: [] }))
    .then(page => {
      const datasets = page.results || [];
      const ready = datasets.filter(d => d.status === "ready" && d.kind === "classification" && (d.classes || []).length >= 2);
      if (!ready.length) return;
      // Two datasets of one name are told apart (as every dataset menu does: webapp/datasets/choices.py).
      const seen = {};
      ready.forEach(d => { seen[d.name] = (seen[d.name] || 0) + 1; });
      const day = iso => new Date(iso).toLocaleDateString(undefined, { day: "numeric", month: "short" });
      const label = d => seen[d.name] > 1 ? d.name + " (#" + d.id + ", " + d.num_items.toLocaleString() + " images, " + day(d.created_at) + ")" : d.name;
      pickers.forEach(pick => {
        pick.append(...ready.map(d => el("option", { value: d.id, "data-classes": d.classes.length }, label(d) + " (" + d.classes.length + " classes)")));
        pick.closest("label").hidden = false;
      });
    })
    .catch(() => { /* the picker is a convenience: leave it hidden */ });
})();

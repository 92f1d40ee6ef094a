/* The search-space editor of the New sweep form: one row per sweepable parameter of the chosen kind
   (from the declarations the API checks a space against). A row either keeps one value for every
   trial, or, with Search ticked, says how to search it: a log or linear range for real numbers, a
   range for whole numbers, or listed values (ticked boxes for choices and on/off settings). A grid
   tries listed values only, so choosing Grid turns real-number ranges into a few listed values.
   The rows shown at once are those the kind's declaration names (options.mainRows); the rest sit under
   "More settings". VL.spaceEditor(options) returns {show, setMethod, collect, rowOf, openFor}. */
(function () {
  "use strict";
  const { el } = window.VL;

  // Sent even when left at their defaults, so that every trial says them (the rest only when changed:
  // a fine-tuned transfer model picks its own learning rate unless it is given one).
  const ALWAYS = ["epochs", "batch_size"];
  // Good first guesses when a row is ticked: the learning rate over three powers of ten, batch sizes
  // in powers of two, a few seeds.
  const FIRST_GUESS = {
    learning_rate: { type: "log_uniform", low: 0.0001, high: 0.1 },
    batch_size: { type: "choice", values: [16, 32, 64, 128] },
    seed: { type: "choice", values: [0, 1, 2] },
    early_stopping: { type: "choice", values: [null, 3, 5] },
    image_size: { type: "choice", values: null },  // the architecture's default and its double
  };
  const TYPE_NAMES = { log_uniform: "Range, log scale", uniform: "Range, linear", int: "Range", choice: "Listed values" };

  const isNum = x => typeof x === "number" && Number.isFinite(x);

  /* A number as a person would type it: 0.0001, not 1.0000000000000001e-4. */
  function short(x) {
    if (x === null) return "off";
    if (typeof x !== "number") return String(x);
    return String(Number(x.toPrecision(6)));
  }

  function clamp(x, p) {
    if (isNum(p.min)) x = Math.max(p.min, x);
    if (isNum(p.max)) x = Math.min(p.max, x);
    return x;
  }

  /* A few values across a range, for a grid: each power of ten on a log scale, else four even steps. */
  function listed(type, low, high) {
    if (!isNum(low) || !isNum(high) || !(low < high)) return [];
    if (type === "log_uniform" && low > 0) {
      const from = Math.ceil(Math.log10(low) - 1e-9), to = Math.floor(Math.log10(high) + 1e-9);
      if (to - from >= 1 && to - from <= 6) {
        const values = [];
        for (let e = from; e <= to; e++) values.push(Number(Math.pow(10, e).toPrecision(6)));
        return values;
      }
      const ratio = Math.pow(high / low, 1 / 3);
      return [0, 1, 2, 3].map(i => Number((low * Math.pow(ratio, i)).toPrecision(2)));
    }
    return [0, 1, 2, 3].map(i => Number((low + (high - low) * i / 3).toPrecision(3)));
  }

  function spaceEditor(options) {
    const declarations = options.params;  // {kind: [param, ...]}
    // {kind: [name, ...]}: the rows a newcomer sees at once, as the kind declares them (JobKind.sweep_main);
    // the rest sit under "More settings".
    const mainRows = options.mainRows || {};
    const rowsByKind = {};  // kind -> {name: row}, built once per kind so that edits survive a switch
    let kind = null, arch = null, method = "tpe";

    function paramsOf(k) { return (declarations[k] || []).filter(p => p.sweep); }

    /* ---- one row ---- */

    function fixedInput(p, id) {
      const name = p.label;
      if (p.type === "choice" || p.type === "bool") {
        const choices = p.type === "bool" ? [["true", "On"], ["false", "Off"]] : p.choices.map(c => [c, c]);
        const select = el("select", { id, class: "space-fixed-input", "aria-label": name + ", every trial" },
          ...choices.map(([value, text]) => el("option", { value }, text)));
        select.value = p.type === "bool" ? String(Boolean(p.default)) : p.default;
        return select;
      }
      const input = el("input", { type: "number", id, class: "space-fixed-input", inputmode: p.type === "int" ? "numeric" : "decimal",
        min: isNum(p.min) ? p.min : null, max: isNum(p.max) ? p.max : null, step: p.step || (p.type === "int" ? "1" : "any"),
        "aria-label": name + ", every trial" });
      if (p.default !== null && p.default !== undefined) input.value = p.default;
      else if (p.nullable) input.placeholder = "off";
      return input;
    }

    function rangeInput(p, which, row) {
      const input = el("input", { type: "number", class: "space-" + which, inputmode: p.type === "int" ? "numeric" : "decimal",
        step: "any", min: isNum(p.min) ? p.min : null, max: isNum(p.max) ? p.max : null,
        "aria-label": p.label + ", " + (which === "low" ? "from" : "to") });
      row.inputs[which] = input;
      return el("label", { class: "space-sub space-range" }, el("span", {}, which === "low" ? "From" : "To"), input);
    }

    function buildRow(p) {
      const id = "sp-" + p.name;
      const row = { param: p, inputs: {}, autoList: null };
      const toggle = el("input", { type: "checkbox", class: "space-on", id: id + "-on", "aria-label": "Search " + p.label,
        "aria-controls": id + "-search" });
      row.toggle = toggle;
      const fixed = fixedInput(p, id + "-fixed");
      row.fixed = fixed;
      const fixedBox = el("div", { class: "space-fixed" },
        el("label", { class: "space-sub", for: id + "-fixed" }, el("span", {}, "Every trial"), fixed),
        p.name === "image_size" ? el("span", { class: "small muted space-note", "data-role": "arch-default" }) : null);

      const search = el("div", { class: "space-search", id: id + "-search" });
      if (p.type === "choice" || p.type === "bool") {
        const choices = p.type === "bool" ? [[true, "On"], [false, "Off"]] : p.choices.map(c => [c, c]);
        row.boxes = choices.map(([value, text]) => {
          const box = el("input", { type: "checkbox", class: "space-choice", value: String(value), "aria-label": p.label + ": " + text });
          box.checked = true;
          box.$value = value;
          return { box, label: el("label", { class: "check space-choice-label" }, box, " " + text) };
        });
        search.append(el("span", { class: "space-sub-title" }, "Try"), ...row.boxes.map(b => b.label));
      } else {
        const types = p.type === "float" ? ["log_uniform", "uniform", "choice"] : ["int", "choice"];
        row.type = el("select", { class: "space-type", "aria-label": p.label + ", how to search" },
          ...types.map(t => el("option", { value: t }, TYPE_NAMES[t])));
        row.list = el("input", { type: "text", class: "space-list", autocomplete: "off", spellcheck: "false",
          "aria-label": p.label + ", values", placeholder: p.nullable ? "off, 3, 5" : (p.type === "int" ? "16, 32, 64" : "0.001, 0.01, 0.1") });
        search.append(
          el("label", { class: "space-sub space-kind" }, el("span", {}, "Search"), row.type),
          rangeInput(p, "low", row), rangeInput(p, "high", row),
          el("label", { class: "space-sub space-values" }, el("span", {}, "Values, comma-separated"), row.list));
        row.type.addEventListener("change", () => { row.chosenType = row.type.value; layout(row); });
      }
      row.node = el("div", { class: "space-row", "data-param": p.name, "data-searched": "false" },
        el("div", { class: "space-name" },
          el("label", { class: "check space-toggle", for: id + "-on" }, toggle, el("span", {}, "Search")),
          el("div", { class: "space-title" },
            el("strong", {}, p.label), p.unit ? el("span", { class: "unit" }, " " + p.unit) : null,
            p.help ? el("span", { class: "small muted space-help" }, p.help) : null)),
        el("div", { class: "space-value" }, fixedBox, search),
        el("p", { class: "field-error", "data-error-for": "param:" + p.name, hidden: true }));
      toggle.addEventListener("change", () => {
        if (toggle.checked && !row.seeded) seed(row);
        layout(row);
      });
      layout(row);
      return row;
    }

    /* The first guess for a row ticked for the first time. */
    function seed(row) {
      row.seeded = true;
      const p = row.param;
      if (row.boxes) return;
      let guess = FIRST_GUESS[p.name];
      const base = currentFixed(row);
      if (p.name === "image_size") {
        const size = isNum(base) ? base : (arch && arch.image_size) || 32;
        guess = { type: "choice", values: [size, clamp(size * 2, p)].filter((v, i, a) => a.indexOf(v) === i) };
      }
      if (!guess) {
        if (p.type === "float") {
          guess = p.log ? { type: "log_uniform", low: clamp((base || 0.001) / 10, p), high: clamp((base || 0.001) * 100, p) }
            : { type: "uniform", low: isNum(p.min) ? p.min : 0, high: isNum(p.max) ? Math.min(p.max, (p.min || 0) + 0.5) : 1 };
        } else {
          const b = isNum(base) ? base : 10;
          guess = { type: "int", low: clamp(Math.max(1, Math.round(b / 2)), p), high: clamp(b * 2, p) };
        }
      }
      row.type.value = guess.type;
      row.chosenType = guess.type;
      if (guess.type === "choice") {
        row.list.value = (guess.values || []).map(short).join(", ");
      } else {
        row.inputs.low.value = short(guess.low);
        row.inputs.high.value = short(guess.high);
      }
    }

    function layout(row) {
      const on = row.toggle.checked;
      row.node.dataset.searched = String(on);
      row.node.querySelector(".space-fixed").hidden = on;
      row.node.querySelector(".space-search").hidden = !on;
      if (!row.type) return;
      const type = row.type.value;
      row.node.querySelectorAll(".space-range").forEach(n => { n.hidden = type === "choice"; });
      row.node.querySelector(".space-values").hidden = type !== "choice";
    }

    /* Grid: ranges of real numbers become listed values (and come back when the list was not edited). */
    function applyMethod(row) {
      if (!row.type) return;
      const grid = method === "grid";
      const real = row.param.type === "float";
      [...row.type.options].forEach(o => { o.disabled = grid && real && o.value !== "choice"; });
      if (grid && real && row.type.value !== "choice") {
        row.beforeGrid = row.type.value;
        const values = listed(row.type.value, Number(row.inputs.low.value), Number(row.inputs.high.value));
        row.autoList = values.map(short).join(", ");
        row.list.value = row.autoList;
        row.type.value = "choice";
      } else if (!grid && row.beforeGrid) {
        if (row.list.value === row.autoList) row.type.value = row.beforeGrid;
        row.beforeGrid = null;
      }
      layout(row);
    }

    function currentFixed(row) {
      const value = row.fixed.value;
      if (row.param.type === "int" || row.param.type === "float") return value === "" ? null : Number(value);
      return value;
    }

    /* ---- which rows show ---- */

    function visible(row) {
      const p = row.param;
      const family = arch ? arch.family : "scratch";
      if (p.name === "image_size") return kind === "train" && family === "scratch";
      if (p.name === "mode") return kind === "train" && family === "transfer";
      return true;
    }

    function show(newKind, newArch) {
      kind = newKind;
      arch = newArch;
      if (!rowsByKind[kind]) {
        rowsByKind[kind] = {};
        paramsOf(kind).forEach(p => { rowsByKind[kind][p.name] = buildRow(p); });
        const lr = rowsByKind[kind].learning_rate;
        if (lr) { lr.toggle.checked = true; seed(lr); layout(lr); }  // a newcomer can press Start
      }
      const rows = Object.values(rowsByKind[kind]);
      const main = mainRows[kind] || [];
      options.main.replaceChildren(...rows.filter(r => main.includes(r.param.name) && visible(r)).map(r => r.node));
      options.more.replaceChildren(...rows.filter(r => !main.includes(r.param.name) && visible(r)).map(r => r.node));
      rows.forEach(applyMethod);
      const sizeNote = rowsByKind[kind].image_size && rowsByKind[kind].image_size.node.querySelector('[data-role="arch-default"]');
      if (sizeNote) {
        const size = arch && arch.image_size;
        rowsByKind[kind].image_size.fixed.placeholder = size ? String(size) : "";
        sizeNote.textContent = size ? "Empty: the architecture's " + size + " px." : "";
      }
      summarizeMore();
    }

    function setMethod(m) {
      method = m;
      if (kind) Object.values(rowsByKind[kind]).forEach(applyMethod);
    }

    function summarizeMore() {
      if (!options.moreSummary || !kind) return;
      const searched = [...options.more.querySelectorAll('.space-row[data-searched="true"]')]
        .map(n => rowsByKind[kind][n.dataset.param].param.label.toLowerCase());
      options.moreSummary.textContent = searched.length ? "(searching " + searched.join(", ") + ")"
        : "(" + [...options.more.querySelectorAll(".space-row")].map(n => rowsByKind[kind][n.dataset.param].param.label.toLowerCase()).join(", ") + ")";
    }

    /* ---- reading it ---- */

    function parseList(p, text) {
      const parts = text.split(/[,;\s]+/).map(s => s.trim()).filter(Boolean);
      const values = [], bad = [];
      parts.forEach(s => {
        if (p.nullable && /^(off|none|null)$/i.test(s)) { values.push(null); return; }
        const x = Number(s);
        if (Number.isNaN(x)) bad.push(s); else values.push(x);
      });
      return { values, bad };
    }

    function rowSpec(row) {
      const p = row.param;
      if (row.boxes) {
        const values = row.boxes.filter(b => b.box.checked).map(b => b.box.$value);
        return values.length ? { spec: { type: "choice", values } } : { problem: "Tick at least one value to try." };
      }
      const type = row.type.value;
      if (type === "choice") {
        const { values, bad } = parseList(p, row.list.value);
        if (bad.length) return { problem: "“" + bad[0] + "” is not a number" + (p.nullable ? " (or off)." : ".") };
        if (!values.length) return { problem: "List at least one value, separated by commas." };
        return { spec: { type: "choice", values } };
      }
      const low = row.inputs.low.value, high = row.inputs.high.value;
      if (low === "" || high === "") return { problem: "Give both ends of the range." };
      if (Number.isNaN(Number(low)) || Number.isNaN(Number(high))) return { problem: "Both ends of the range are numbers." };
      return { spec: { type, low: Number(low), high: Number(high) } };
    }

    /* {params: the values every trial shares, space, missing: {name: [sentence]}} for the rows shown. */
    function collect() {
      const params = {}, space = {}, missing = {};
      if (!kind) return { params, space, missing };
      [options.main, options.more].forEach(box => box.querySelectorAll(".space-row").forEach(node => {
        const row = rowsByKind[kind][node.dataset.param];
        const p = row.param;
        if (row.toggle.checked) {
          const { spec, problem } = rowSpec(row);
          if (problem) missing[p.name] = [problem]; else space[p.name] = spec;
          return;
        }
        let value = row.fixed.value;
        if (p.type === "bool") value = value === "true";
        else if (p.type === "int" || p.type === "float") {
          if (value === "") {
            if (p.optional) return;  // the architecture's default, or off
            if (p.nullable) { params[p.name] = null; return; }
            missing[p.name] = ["Enter a number."];
            return;
          }
          value = Number(value);
        }
        if (ALWAYS.includes(p.name) || value !== p.default) params[p.name] = value;
      }));
      return { params, space, missing };
    }

    function rowOf(name) { return kind && rowsByKind[kind] ? rowsByKind[kind][name] || null : null; }

    /* Unfold "More settings" when a message lands in a row there. */
    function openFor(name) {
      const row = rowOf(name);
      if (row && options.more.contains(row.node) && options.moreBox) options.moreBox.open = true;
    }

    options.main.parentNode.addEventListener("change", summarizeMore);
    return { show, setMethod, collect, rowOf, openFor, searchedCount: () => Object.keys(collect().space).length };
  }

  window.VL.spaceEditor = spaceEditor;
})();

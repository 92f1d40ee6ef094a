/* What the caption and features launch forms share with the train page's: the queue banner, and
   errors shown under their fields. The API answers 400 with
   {"dataset": [...], "architecture": [...], "params": {"field": [sentence]}}; each sentence goes
   under its field (a `.field[data-field]` holding a `[data-error-for]` slot) and into the list at
   the top of the form. window.VL.launcher(form, options) returns {submit}. */
(function () {
  "use strict";
  const { el, errorText: text } = window.VL;

  /* Per-field errors for any form built from .field[data-field] blocks. */
  function fieldErrors(form) {
    const box = form.querySelector(".form-errors");
    const list = box ? box.querySelector("ul") : null;
    const labels = {};
    form.querySelectorAll("[data-field]").forEach(node => { labels[node.dataset.field] = node.dataset.label; });

    function clear() {
      if (box) { box.hidden = true; list.replaceChildren(); }
      form.querySelectorAll("[data-error-for]").forEach(p => { p.hidden = true; p.textContent = ""; });
      form.querySelectorAll(".field.has-error").forEach(f => f.classList.remove("has-error"));
      form.querySelectorAll("[aria-invalid]").forEach(i => i.removeAttribute("aria-invalid"));
    }

    /* A field the user changed loses its message; the list at the top goes when none is left. */
    function clearField(name) {
      const slot = form.querySelector('[data-error-for="' + CSS.escape(name) + '"]');
      if (!slot || slot.hidden) return;
      slot.hidden = true;
      const wrapper = slot.closest(".field");
      if (wrapper) wrapper.classList.remove("has-error");
      const input = wrapper && wrapper.querySelector("[aria-invalid]");
      if (input) input.removeAttribute("aria-invalid");
      if (box && !form.querySelector("[data-error-for]:not([hidden])")) { box.hidden = true; list.replaceChildren(); }
    }

    function show(errors) {
      const flat = [];
      Object.entries(errors || {}).forEach(([field, messages]) => {
        if (field === "params" && messages && !Array.isArray(messages) && typeof messages === "object") {
          Object.entries(messages).forEach(([f, m]) => flat.push([f, text(m)]));
        } else {
          flat.push([field, text(messages)]);
        }
      });
      flat.forEach(([field, message]) => {
        const slot = form.querySelector('[data-error-for="' + CSS.escape(field) + '"]');
        if (slot) {
          slot.textContent = message;
          slot.hidden = false;
          const wrapper = slot.closest(".field");
          if (wrapper) {
            wrapper.classList.add("has-error");
            const input = wrapper.querySelector("input:not([type=checkbox]):not([type=radio]), select");
            if (input) input.setAttribute("aria-invalid", "true");
          }
          const details = slot.closest("details");
          if (details) details.open = true;
        }
        if (list) {
          const label = ["non_field_errors", "detail"].includes(field) ? "" : (labels[field] || field.replace(/_/g, " ")) + ": ";
          list.append(el("li", {}, label ? el("strong", {}, label) : null, message));
        }
      });
      if (box) {
        box.hidden = false;
        box.scrollIntoView({ block: "center", behavior: "smooth" });
        box.focus({ preventScroll: true });
      }
    }

    return { clear, clearField, show };
  }

  /* The queue banner (#queue-problem): polled like the train page, plus the last 503's sentence. */
  function queueBanner(onChange) {
    const problem = document.getElementById("queue-problem");
    const problemText = document.getElementById("queue-problem-text");
    const state = { ok: !problem || problem.hidden, launchProblem: null };
    const queueMessage = problemText ? problemText.textContent : "";
    function show() {
      if (!problem) return;
      problem.hidden = state.ok && !state.launchProblem;
      problemText.textContent = state.launchProblem || queueMessage;
    }
    VL.poll("/api/queue-status/", status => { state.ok = status.ok; show(); onChange(); },
      { interval: 5000, hiddenInterval: 30000 });
    return {
      get ok() { return state.ok; },
      fail(sentence) {
        state.launchProblem = sentence;
        show();
        if (problem) problem.scrollIntoView({ block: "center", behavior: "smooth" });
      },
      reset() { state.launchProblem = null; show(); },
    };
  }

  /* The sentence for a launch the server answered without one (status 0: no answer, said by VL.api). */
  function startFailed(status) {
    if (status === 503) return "The job queue is not reachable, so the job was not started.";
    if (status) return "The server could not start the job (error " + status + "). Try again in a moment.";
    return undefined;
  }

  /* A form that launches one job: collect() returns {body, missing}; 201 opens the job's page. */
  function launcher(form, options) {
    const button = options.button;
    const label = button.textContent;
    const errors = fieldErrors(form);
    let submitting = false;
    const banner = queueBanner(update);

    function update() { button.disabled = submitting || !banner.ok; }

    function done() {
      submitting = false;
      button.textContent = label;
      update();
    }

    async function submit(event) {
      event.preventDefault();
      if (submitting) return;
      errors.clear();
      banner.reset();
      const { body, missing } = options.collect();
      if (missing && Object.keys(missing).length) { errors.show({ params: missing }); return; }
      submitting = true;
      update();
      button.textContent = "Starting…";
      let job;
      try {
        job = await VL.api("/api/jobs/", { method: "POST", json: body, fallback: startFailed });
      } catch (err) {
        if (err.status === 503) banner.fail(err.message);
        else if (err.status === 400 && err.data) errors.show(err.data);
        else errors.show({ detail: [err.message] });
        done();
        return;
      }
      window.location.assign("/jobs/" + job.id + "/");  // the button stays disabled while the job page loads
    }

    form.addEventListener("submit", submit);
    ["input", "change"].forEach(type => form.addEventListener(type, event => { if (event.target.name) errors.clearField(event.target.name); }));
    update();
    return { errors };
  }

  /* A number input's value, or null when empty; NaN stays NaN so the caller can say so. */
  function numberValue(input) { return input.value === "" ? null : Number(input.value); }

  /* The values of the fields a form draws from the parameter declarations ({% param_group %}:
     inputs with data-param="int|float|bool|choice"), by type, with {name: [sentence]} for the
     numbers that cannot be sent. A number its checkbox turned off ([data-toggles]) is null; an
     empty one is null where data-empty="null", left to the server where "omit", else missing. */
  function declaredParams(form) {
    const params = {}, missing = {};
    form.querySelectorAll("[data-param]").forEach(input => {
      const type = input.dataset.param, name = input.name, empty = input.dataset.empty;
      if (type === "bool") params[name] = input.checked;
      else if (type === "choice") params[name] = input.value;
      else if (input.disabled) params[name] = null;
      else if (input.value === "" && !input.validity.badInput) {
        if (empty === "null") params[name] = null;
        else if (empty !== "omit") missing[name] = ["Enter a number."];
      } else if (input.validity.badInput || Number.isNaN(Number(input.value))) {
        missing[name] = [empty === "null" ? "Enter a number, or leave it empty." : "Enter a number."];
      } else params[name] = Number(input.value);
    });
    return { params, missing };
  }

  Object.assign(window.VL, { declaredParams, fieldErrors, launcher, numberValue });
})();

/* What the caption and features launch forms share with the train page's: the CSRF token, the
   queue banner, and errors shown under their fields. The API answers 400 with
   {"dataset": [...], "architecture": [...], "params": {"field": [sentence]}}; each sentence goes
   under its field (a `.field[data-field]` holding a `[data-error-for]` slot) and into the list at
   the top of the form. window.VL.launcher(form, options) returns {submit}. */
(function () {
  "use strict";
  const { el } = window.VL;

  function csrfToken(scope) {
    const input = (scope || document).querySelector("input[name=csrfmiddlewaretoken]") ||
      document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const cookie = document.cookie.split("; ").find(c => c.startsWith("csrftoken="));
    return cookie ? decodeURIComponent(cookie.slice("csrftoken=".length)) : "";
  }

  function text(messages) {
    if (Array.isArray(messages)) return messages.map(text).join(" ");
    if (messages && typeof messages === "object") return Object.values(messages).map(text).join(" ");
    return String(messages);
  }

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
      let response, data = {};
      try {
        response = await fetch("/api/jobs/", {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken(form) },
          body: JSON.stringify(body),
        });
        data = await response.json().catch(() => ({}));
      } catch (err) {
        errors.show({ detail: ["The server did not answer. Check your connection and try again."] });
        done();
        return;
      }
      if (response.status === 201) {
        window.location.assign("/jobs/" + data.id + "/");
        return; // keep the button disabled while the job page loads
      }
      if (response.status === 503) banner.fail(data.detail || "The job queue is not reachable, so the job was not started.");
      else if (response.status === 400) errors.show(data);
      else if (response.status === 401 || response.status === 403) errors.show({ detail: [data.detail || "Your session has ended: reload the page and log in again."] });
      else errors.show({ detail: [data.detail || "The server could not start the job (error " + response.status + "). Try again in a moment."] });
      done();
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

  Object.assign(window.VL, { csrfToken, declaredParams, errorText: text, fieldErrors, launcher, numberValue });
})();

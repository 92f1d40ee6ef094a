/* The Models page: rename a model in its row, switch off its demo link, delete it. The server drew the
   table; each action goes through the API and changes only its own row. Revoking and deleting cannot
   be undone, so both ask first (VL.confirm) with a sentence that says what goes. */
(function () {
  "use strict";
  const { el } = window.VL;
  const $ = id => document.getElementById(id);
  const table = $("models-table");
  const statusLine = $("models-status");
  const problem = $("models-problem");
  if (!table) return;

  document.querySelectorAll("time[datetime]").forEach(node => {
    const when = new Date(node.getAttribute("datetime"));
    if (isNaN(when)) return;  // the reader's own time zone; the date above the time, so the column stays narrow
    node.replaceChildren(el("span", { class: "made-date" }, when.toLocaleDateString(undefined, { dateStyle: "medium" })),
      el("span", { class: "made-time small muted" }, when.toLocaleTimeString(undefined, { timeStyle: "short" })));
  });

  function say(message) {
    problem.hidden = true;
    statusLine.textContent = message;
  }

  function fail(message) {
    statusLine.textContent = "";
    problem.textContent = message;
    problem.hidden = false;
  }

  /* One API call; {data} or {error: a sentence}. */
  async function call(method, url, json) {
    try {
      return { data: await VL.api(url, { method, json }) || {} };
    } catch (err) {
      if (err.status === 404) return { error: "This model no longer exists; reload the page.", gone: true };
      return { error: err.message };
    }
  }

  const DEMO_STOPS = "Its public demo link stops working at once.";  // webapp/experiments/deletion.py
  const rowOf = node => node.closest("tr[data-model]");
  const apiUrl = row => "/api/models/" + row.dataset.model + "/";

  /* ---- rename, in the row ---- */

  function openRename(row) {
    const form = row.querySelector(".model-rename-form");
    row.querySelector(".model-name-view").hidden = true;
    form.hidden = false;
    form.elements.name.value = row.dataset.name;
    form.querySelector(".model-rename-error").hidden = true;
    form.elements.name.focus();
    form.elements.name.select();
  }

  function closeRename(row) {
    row.querySelector(".model-rename-form").hidden = true;
    row.querySelector(".model-name-view").hidden = false;
    row.querySelector(".model-rename").focus();
  }

  async function rename(row, form) {
    const name = form.elements.name.value.trim();
    const error = form.querySelector(".model-rename-error");
    if (!name) {
      error.textContent = "Give the model a name.";
      error.hidden = false;
      form.elements.name.focus();
      return;
    }
    if (name === row.dataset.name) { closeRename(row); return; }
    const save = form.querySelector('button[type="submit"]');
    save.disabled = true;
    const { data, error: message } = await call("PATCH", apiUrl(row), { name });
    save.disabled = false;
    if (message) {
      error.textContent = message;
      error.hidden = false;
      form.elements.name.focus();
      return;
    }
    row.dataset.name = data.name;
    row.querySelector(".model-link").textContent = data.name;
    row.querySelector(".model-rename").setAttribute("aria-label", "Rename " + data.name);
    row.querySelector(".model-delete").setAttribute("aria-label", "Delete " + data.name);
    closeRename(row);
    say("Renamed to “" + data.name + "”.");
  }

  /* ---- the demo link ---- */

  async function revoke(row, button) {
    const ok = await VL.confirm({
      title: "Switch off this demo link?",
      text: "Anyone who opens " + button.dataset.url + " will be told the demo was switched off. Sharing “"
        + row.dataset.name + "” again makes a different link: this one never works again.",
      action: "Revoke link",
    });
    if (!ok) return;
    button.disabled = true;
    const { error } = await call("DELETE", apiUrl(row) + "share/");
    if (error) { button.disabled = false; fail(error); return; }
    row.querySelector(".model-demo-cell").replaceChildren(el("span", { class: "muted" }, "Not shared"), " · ",
      el("a", { href: "/models/" + row.dataset.model + "/#share-card" }, "share"));
    row.dataset.lost = row.dataset.lost.replace(" " + DEMO_STOPS, "");  // nothing left to stop
    say("The demo link of “" + row.dataset.name + "” is switched off.");
  }

  /* ---- delete ---- */

  async function remove(row, button) {
    const ok = await VL.confirm({ title: "Delete “" + row.dataset.name + "”?", text: row.dataset.lost, action: "Delete model" });
    if (!ok) return;
    button.disabled = true;
    const { error, gone } = await call("DELETE", apiUrl(row));
    if (error && !gone) { button.disabled = false; fail(error); return; }
    const name = row.dataset.name;
    const next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    const count = $("models-count");
    count.textContent = Math.max(0, Number(count.textContent.replace(/\D/g, "")) - 1).toLocaleString();
    if (!table.querySelector("tr[data-model]")) {
      table.closest(".table-scroll").hidden = true;
      $("models-empty").hidden = false;
    }
    say("Deleted “" + name + "” and its files.");
    const focus = next && next.querySelector(".model-link");
    if (focus) focus.focus();
  }

  table.addEventListener("click", event => {
    const button = event.target.closest("button");
    if (!button) return;
    const row = rowOf(button);
    if (button.classList.contains("model-rename")) openRename(row);
    else if (button.classList.contains("model-rename-cancel")) closeRename(row);
    else if (button.classList.contains("model-revoke")) revoke(row, button);
    else if (button.classList.contains("model-delete")) remove(row, button);
  });
  table.addEventListener("submit", event => {
    event.preventDefault();
    rename(rowOf(event.target), event.target);
  });
  table.addEventListener("keydown", event => {
    if (event.key === "Escape" && event.target.closest(".model-rename-form")) closeRename(rowOf(event.target));
  });
})();

/* Confirming what cannot be undone (deleting, revoking a demo link, replacing the API token) in one
   real <dialog>: a title that asks, a sentence that says what will be lost, Cancel and the action.

   VL.confirm({title, text, action}) resolves true only when the person presses the action button;
   Escape, Cancel or a click outside resolve false. Cancel has the focus, so a stray Enter never deletes.

   A form that needs a confirmation says so in its markup, and works the same without a script:
     <form method="post" data-confirm="Sentence." data-confirm-title="Delete it?" data-confirm-action="Delete">
*/
(function () {
  "use strict";
  const { el } = window.VL;
  let dialog = null;

  function build() {
    const title = el("h2", { id: "confirm-title", class: "confirm-title" });
    const text = el("p", { id: "confirm-text", class: "confirm-text" });
    const cancel = el("button", { type: "submit", value: "cancel", class: "btn", "data-role": "cancel" }, "Cancel");
    const ok = el("button", { type: "submit", value: "ok", class: "btn btn-danger", "data-role": "confirm" });
    const form = el("form", { method: "dialog", class: "confirm-form" }, title, text,
      el("div", { class: "confirm-actions" }, cancel, ok));
    const box = el("dialog", { class: "confirm-dialog", "aria-labelledby": "confirm-title",
      "aria-describedby": "confirm-text", "data-testid": "confirm-dialog" }, form);
    // A click on the backdrop (the dialog element itself, outside its form) cancels.
    box.addEventListener("click", event => { if (event.target === box) box.close("cancel"); });
    document.body.append(box);
    return box;
  }

  function confirm(options) {
    if (!dialog) dialog = build();
    if (dialog.open) dialog.close("cancel");
    dialog.querySelector(".confirm-title").textContent = options.title || "Are you sure?";
    dialog.querySelector(".confirm-text").textContent = options.text || "This cannot be undone.";
    dialog.querySelector('[data-role="confirm"]').textContent = options.action || "Delete";
    dialog.returnValue = "";
    const opener = document.activeElement;
    return new Promise(resolve => {
      dialog.addEventListener("close", function done() {
        dialog.removeEventListener("close", done);
        if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
        resolve(dialog.returnValue === "ok");
      });
      dialog.showModal();
      dialog.querySelector('[data-role="cancel"]').focus();
    });
  }

  /* Forms that carry data-confirm submit only after the person confirms. */
  document.addEventListener("submit", async event => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm || form.dataset.confirmed) return;
    event.preventDefault();
    const ok = await confirm({ title: form.dataset.confirmTitle, text: form.dataset.confirm,
      action: form.dataset.confirmAction });
    if (!ok) return;
    form.dataset.confirmed = "1";
    form.submit();
  });

  window.VL.confirm = confirm;
})();

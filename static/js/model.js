/* A trained model: try it on a photo (drop, pick, paste or, on phones, take one) and read its
   five most likely classes as bars. Predictions run on the inference worker. */
(function () {
  "use strict";
  const { el, bytes } = window.VL;
  const modelId = VL.json("model-id");
  const $ = id => document.getElementById(id);
  const drop = $("predict-drop");
  const preview = $("predict-preview");
  const statusLine = $("predict-status");
  const errorBox = $("predict-error");
  const list = $("predictions");
  let sequence = 0;
  let previewUrl = null;

  document.querySelectorAll("time[datetime]").forEach(node => {
    const when = new Date(node.getAttribute("datetime"));
    if (!isNaN(when)) node.textContent = when.toLocaleString();
  });
  document.querySelectorAll("[data-bytes]").forEach(node => { node.textContent = bytes(Number(node.dataset.bytes)); });
  const accuracy = $("model-accuracy");
  if (accuracy.dataset.fraction) accuracy.textContent = (Number(accuracy.dataset.fraction) * 100).toFixed(1) + "%";

  function csrfToken() {
    const input = document.querySelector("#predict-form input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function status(message) {
    statusLine.hidden = !message;
    statusLine.textContent = message || "";
  }

  function fail(message) {
    errorBox.hidden = false;
    errorBox.textContent = message;
    list.hidden = true;
    status("");
    drop.classList.remove("busy");
  }

  function percent(p) {
    if (p >= 0.9995) return "100%";
    if (p < 0.001) return "<0.1%";
    return (p * 100).toFixed(1) + "%";
  }

  function showPredictions(predictions) {
    list.replaceChildren(...predictions.map((p, i) => {
      const width = Math.max(0.5, Math.min(100, p.probability * 100));
      return el("li", { class: "prediction" + (i === 0 ? " top" : "") },
        el("span", { class: "prediction-label", title: p.label }, p.label),
        el("span", { class: "prediction-bar", role: "img", "aria-label": p.label + ": " + percent(p.probability) },
          el("span", { class: "prediction-fill", style: "width:" + width.toFixed(2) + "%" })),
        el("span", { class: "prediction-value" }, percent(p.probability)));
    }));
    list.hidden = false;
  }

  async function predict(file) {
    if (!file) return;
    const mine = ++sequence;
    errorBox.hidden = true;
    if (file.type && !file.type.startsWith("image/")) {
      fail("“" + file.name + "” is not an image. Choose a JPEG, PNG, GIF, BMP or WebP photo.");
      return;
    }
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(file);
    preview.classList.remove("pixelated");
    preview.onload = () => { preview.classList.toggle("pixelated", preview.naturalWidth < 110); };
    preview.src = previewUrl;
    preview.hidden = false;
    drop.classList.add("chosen", "busy");
    $("predict-prompt").hidden = true;
    $("predict-file-name").textContent = (file.name || "pasted image") + " · " + bytes(file.size) + " · click the photo to choose another";
    status("Asking the model…");
    list.classList.add("stale");

    const body = new FormData();
    body.append("image", file, file.name || "image.png");
    let response, data = {};
    try {
      response = await fetch("/api/models/" + modelId + "/predict/", {
        method: "POST", body, credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
      });
      data = await response.json().catch(() => ({}));
    } catch (err) {
      if (mine === sequence) fail("The server did not answer. Check your connection and try again.");
      return;
    }
    if (mine !== sequence) return; // a newer photo was chosen meanwhile
    list.classList.remove("stale");
    drop.classList.remove("busy");
    if (response.ok && Array.isArray(data.predictions)) {
      status("");
      showPredictions(data.predictions);
      return;
    }
    if (response.status === 413) fail(data.detail || "This photo is too large for the server.");
    else if (response.status === 503) fail(data.detail || "No inference worker is answering right now. Try again in a moment.");
    else if (response.status === 401 || response.status === 403) fail("Your session has ended: reload the page and log in again.");
    else fail(data.detail || "The model could not read this photo (error " + response.status + ").");
  }

  [$("predict-file"), $("predict-camera")].forEach(input => input.addEventListener("change", () => {
    predict(input.files[0]);
    input.value = ""; // choosing the same file again predicts again
  }));

  ["dragenter", "dragover"].forEach(type => drop.addEventListener(type, event => {
    event.preventDefault();
    drop.classList.add("dragover");
  }));
  ["dragleave", "dragend"].forEach(type => drop.addEventListener(type, () => drop.classList.remove("dragover")));
  drop.addEventListener("drop", event => {
    event.preventDefault();
    drop.classList.remove("dragover");
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file) predict(file);
  });
  document.addEventListener("paste", event => {
    const item = [...(event.clipboardData ? event.clipboardData.items : [])].find(i => i.kind === "file" && i.type.startsWith("image/"));
    if (item) predict(item.getAsFile());
  });
})();

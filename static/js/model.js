/* A trained model: try it on a photo (drop, pick, paste or, on phones, take one) and read its
   five most likely classes as bars, or for a caption model its sentence. Both run on the
   inference worker. A caption model can also be shared: one public demo link, revocable. */
(function () {
  "use strict";
  const { el, bytes } = window.VL;
  const modelId = VL.json("model-id");
  const isCaption = VL.json("model-task") === "caption";
  const $ = id => document.getElementById(id);
  const drop = $("predict-drop");
  const preview = $("predict-preview");
  const statusLine = $("predict-status");
  const errorBox = $("predict-error");
  const list = $("predictions");
  let sequence = 0;
  let previewUrl = null;

  VL.localize();  // its date, file size and test accuracy

  function status(message) {
    statusLine.hidden = !message;
    statusLine.textContent = message || "";
  }

  function fail(message) {
    errorBox.hidden = false;
    errorBox.textContent = message;
    if (list) list.hidden = true;
    if (isCaption) $("caption-answer").hidden = true;
    status("");
    drop.classList.remove("busy");
  }

  function showCaption(caption, started) {
    const answer = $("caption-answer");
    const text = $("caption-result");
    text.textContent = caption || "(an empty caption)";
    answer.classList.remove("stale");
    answer.hidden = false;
    $("caption-note").textContent = "Answered in " + Math.max(1, Math.round(performance.now() - started)).toLocaleString() + " ms.";
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
    status(isCaption ? "Writing a caption…" : "Asking the model…");
    if (list) list.classList.add("stale");
    if (isCaption) $("caption-answer").classList.add("stale");
    const started = performance.now();

    const body = new FormData();
    body.append("image", file, file.name || "image.png");
    let data, problem = null;
    try {
      data = await VL.api("/api/models/" + modelId + (isCaption ? "/caption/" : "/predict/"),
        { method: "POST", body, fallback: unread }) || {};
    } catch (err) {
      problem = err.message;
    }
    if (mine !== sequence) return; // a newer photo was chosen meanwhile
    if (list) list.classList.remove("stale");
    drop.classList.remove("busy");
    if (problem) {
      fail(problem);
      return;
    }
    if (isCaption && typeof data.caption === "string") {
      status("");
      showCaption(data.caption, started);
      return;
    }
    if (Array.isArray(data.predictions)) {
      status("");
      showPredictions(data.predictions);
      return;
    }
    fail(unread(200));
  }

  /* Why a photo got no answer, when the server's answer does not say (status 0: no answer, said by VL.api). */
  function unread(code) {
    if (code === 413) return "This photo is too large for the server.";
    if (code === 503) return "No inference worker is answering right now. Try again in a moment.";
    return code ? "The model could not read this photo (error " + code + ")." : undefined;
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
    if (event.target instanceof HTMLInputElement && event.target.type === "text") return;
    const item = [...(event.clipboardData ? event.clipboardData.items : [])].find(i => i.kind === "file" && i.type.startsWith("image/"));
    if (item) predict(item.getAsFile());
  });

  /* ---- the public demo link (caption models) ---- */

  const share = $("share-card");
  if (!share) return;
  const shareOn = $("share-on"), shareOff = $("share-off"), shareStatus = $("share-status");
  const urlBox = $("share-url"), shareButton = $("share-button"), revokeButton = $("share-revoke");

  /* The link carries the host this page was opened by. Others cannot open localhost, a private network's
     address (10/8, 172.16/12, 192.168/16, link-local) or a .local name: say so, and what to do. */
  function privateHost(url) {
    let host;
    try { host = new URL(url).hostname.toLowerCase().replace(/^\[|\]$/g, ""); } catch (err) { return null; }
    const octets = host.split(".").map(Number);
    const ipv4 = octets.length === 4 && octets.every(n => Number.isInteger(n) && n >= 0 && n <= 255) && /^[\d.]+$/.test(host);
    if (host === "localhost" || host.endsWith(".localhost") || host === "::1" || host === "0.0.0.0") return { host, local: true };
    if (ipv4 && octets[0] === 127) return { host, local: true };
    if (ipv4 && (octets[0] === 10 || (octets[0] === 172 && octets[1] >= 16 && octets[1] <= 31)
      || (octets[0] === 192 && octets[1] === 168) || (octets[0] === 169 && octets[1] === 254))) return { host, local: false };
    if (host.includes(":") && /^(fc|fd|fe[89ab])/.test(host)) return { host, local: false };
    if (host.endsWith(".local") || host.endsWith(".internal") || host.endsWith(".lan")) return { host, local: false };
    return null;
  }

  function warnHost(url) {
    const box = $("share-host-warning");
    const found = url ? privateHost(url) : null;
    box.hidden = !found;
    if (!found) return;
    box.textContent = found.local
      ? "This link points to " + found.host + ", which means this computer: nobody else can open it. Open VisionLab by an address others can reach (its host name or public address), then revoke this link and share again."
      : "This link points to " + found.host + ", a private address: only people on the same network can open it. To share it more widely, open VisionLab by a public address, then revoke this link and share again.";
  }

  function shareState(url, message, isError) {
    shareOn.hidden = !url;
    shareOff.hidden = Boolean(url);
    if (url) {
      urlBox.value = url;
      $("share-open").href = url;
    }
    warnHost(url);
    shareStatus.textContent = message || "";
    shareStatus.classList.toggle("field-error", Boolean(isError));
  }

  async function shareCall(method) {
    try {
      return { data: await VL.api("/api/models/" + modelId + "/share/", { method }) };
    } catch (err) {
      return { error: err.message };
    }
  }

  shareButton.addEventListener("click", async () => {
    shareButton.disabled = true;
    shareStatus.textContent = "Making the link…";
    const { data, error } = await shareCall("POST");
    shareButton.disabled = false;
    if (error) { shareState(null, error, true); return; }
    shareState(data.url, "The demo is live. Send the link to anyone: it opens this demo and nothing else.");
    urlBox.focus();
    urlBox.select();
  });

  revokeButton.addEventListener("click", async () => {
    const ok = await VL.confirm({
      title: "Switch off this demo link?",
      text: "Anyone who opens it will be told the demo was switched off. Sharing again makes a different link: this one never works again.",
      action: "Revoke link",
    });
    if (!ok) return;
    revokeButton.disabled = true;
    const { error } = await shareCall("DELETE");
    revokeButton.disabled = false;
    if (error) { shareStatus.textContent = error; shareStatus.classList.add("field-error"); return; }
    urlBox.value = "";
    shareState(null, "Revoked: the old link no longer opens anything. Share again to make a new link.");
    shareButton.focus();
  });

  warnHost(urlBox.value);
  urlBox.addEventListener("focus", () => urlBox.select());
  $("share-copy").addEventListener("click", async () => {
    let copied = false;
    try {
      await navigator.clipboard.writeText(urlBox.value);
      copied = true;
    } catch (err) {
      urlBox.focus();
      urlBox.select();
      try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
    }
    shareStatus.classList.remove("field-error");
    shareStatus.textContent = copied ? "Copied to the clipboard." : "Press Ctrl+C (or ⌘C) to copy the selected link.";
  });
})();

/* The public caption demo. A photo arrives by drop, click, paste, the camera or an example; the
   page shows it at once, sends it (no cookies, no account) and writes the answer in large type.
   Big phone photos are scaled down in the browser first, so they travel fast on a phone network.
   Every failure is one plain sentence where the answer would be. */
(function () {
  "use strict";
  const $ = id => document.getElementById(id);
  // Phones and tablets get a camera button (the page's <head> marks them before the first paint too).
  if (window.matchMedia && matchMedia("(pointer: coarse)").matches) document.documentElement.classList.add("touch");
  const root = $("demo");
  const captionUrl = root.dataset.captionUrl;
  const maxBytes = Number(root.dataset.maxBytes) || 8 * 1024 * 1024;
  const drop = $("demo-drop");
  const preview = $("demo-preview");
  const prompt = $("demo-prompt");
  const statusLine = $("demo-status");
  const caption = $("demo-caption");
  const hint = $("demo-hint");
  const errorBox = $("demo-error");
  const answer = $("demo-answer");
  const MAX_SIDE = 1600; // larger photos are scaled down before sending: nothing needs more
  const SHRINK_ABOVE = 1.5 * 1024 * 1024;
  let sequence = 0;
  let previewUrl = null;

  function megabytes(n) { return Math.max(1, Math.floor(n / (1024 * 1024))) + " MB"; }

  function busy(on, message) {
    if (on) answer.hidden = false;
    drop.classList.toggle("busy", on);
    answer.setAttribute("aria-busy", on ? "true" : "false");
    statusLine.hidden = !on;
    statusLine.textContent = on ? message : "";
  }

  function fail(message) {
    busy(false);
    errorBox.textContent = message;
    errorBox.hidden = false;
    caption.textContent = "";
    caption.classList.add("empty");
    caption.classList.remove("stale", "fresh");
    hint.hidden = true;
    answer.hidden = true; // the sentence takes the answer's place
  }

  function show(text) {
    busy(false);
    answer.hidden = false;
    errorBox.hidden = true;
    caption.classList.remove("empty", "stale", "fresh");
    void caption.offsetWidth; // restart the fade-in for a second answer
    caption.textContent = text;
    caption.classList.add("fresh");
    hint.hidden = true;
  }

  function showPreview(file) {
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(file);
    preview.classList.remove("pixelated");
    preview.onload = () => { preview.classList.toggle("pixelated", preview.naturalWidth < 120); };
    preview.onerror = () => { preview.hidden = true; prompt.hidden = false; drop.classList.remove("chosen"); };
    preview.src = previewUrl;
    preview.hidden = false;
    prompt.hidden = true;
    drop.classList.add("chosen");
    $("demo-choose-label").textContent = "Choose another photo";
  }

  /* A phone photo of 4000x3000 pixels and 6 MB becomes a 1600 px JPEG of a few hundred KB. When
     the browser cannot open the file (a format it does not know), it goes as it is. */
  async function shrink(file) {
    if (file.size <= SHRINK_ABOVE || !window.createImageBitmap) return file;
    let bitmap;
    try {
      bitmap = await createImageBitmap(file);
    } catch (err) {
      return file;
    }
    const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    if (bitmap.close) bitmap.close();
    const blob = await new Promise(resolve => canvas.toBlob(resolve, "image/jpeg", 0.9));
    return blob && blob.size < file.size ? new File([blob], "photo.jpg", { type: "image/jpeg" }) : file;
  }

  async function describe(file) {
    if (!file) return;
    const mine = ++sequence;
    errorBox.hidden = true;
    if (file.type && !file.type.startsWith("image/")) {
      fail("This file is not a photo. Choose a picture such as a JPEG or PNG.");
      return;
    }
    showPreview(file);
    caption.classList.add("stale");
    hint.hidden = true;
    busy(true, "Looking at your photo…");

    const photo = await shrink(file);
    if (mine !== sequence) return;
    if (photo.size > maxBytes) {
      fail("This photo is too large. Choose one under " + megabytes(maxBytes) + ".");
      return;
    }
    const body = new FormData();
    body.append("image", photo, photo.name || "photo.png");
    let data = null, status = 200;
    try {
      data = await VL.api(captionUrl, { method: "POST", body, credentials: "omit" });  // no session, no token
    } catch (err) {
      [data, status] = [err.data, err.status];
    }
    if (mine !== sequence) return; // a newer photo was chosen meanwhile
    if (status === 200 && data && typeof data.caption === "string") show(data.caption.trim() || "(no words came to mind for this one)");
    else fail(refusal(status, (data && data.detail) || ""));
  }

  /* What a visitor reads when no caption came back: the app's own sentences are not for them. */
  function refusal(status, detail) {
    if (status === 0) return "We could not reach the server. Check your connection and try again.";
    if (status === 404) return "This link no longer works: its owner has switched it off.";
    if (status === 429) return detail || "Too many photos in a minute. Please wait a moment and try again.";
    if (status === 413) return detail || "This photo is too large. Choose one under " + megabytes(maxBytes) + ".";
    if (status === 400 && detail) return detail;
    if (status === 503) return "It is busy or resting right now. Please try again in a moment.";
    return "Something went wrong on our side (error " + status + "). Please try again in a moment.";
  }

  [$("demo-file"), $("demo-camera")].forEach(input => input.addEventListener("change", () => {
    document.querySelectorAll(".demo-example[aria-pressed]").forEach(b => b.removeAttribute("aria-pressed"));
    describe(input.files[0]);
    input.value = ""; // the same photo again describes it again
  }));

  /* Drop on the box, or anywhere on the page: a photo dropped a little off target still counts,
     and the browser never navigates away to show the file by itself. */
  let depth = 0;
  window.addEventListener("dragenter", event => { event.preventDefault(); depth++; drop.classList.add("dragover"); });
  window.addEventListener("dragover", event => { event.preventDefault(); });
  window.addEventListener("dragleave", () => { depth = Math.max(0, depth - 1); if (!depth) drop.classList.remove("dragover"); });
  window.addEventListener("drop", event => {
    event.preventDefault();
    depth = 0;
    drop.classList.remove("dragover");
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file) describe(file);
  });
  document.addEventListener("paste", event => {
    const item = [...(event.clipboardData ? event.clipboardData.items : [])].find(i => i.kind === "file" && i.type.startsWith("image/"));
    if (item) { event.preventDefault(); describe(item.getAsFile()); }
  });

  document.querySelectorAll(".demo-example").forEach((button, index) => button.addEventListener("click", async () => {
    document.querySelectorAll(".demo-example[aria-pressed]").forEach(b => b.removeAttribute("aria-pressed"));
    button.setAttribute("aria-pressed", "true");
    const mine = sequence;
    let blob;
    try {
      const response = await fetch(button.dataset.src, { credentials: "omit" });
      if (response.status === 404) { fail("This link no longer works: its owner has switched it off."); return; }
      if (!response.ok) throw new Error("HTTP " + response.status);
      blob = await response.blob();
    } catch (err) {
      fail("This example could not be loaded. Check your connection and try again.");
      return;
    }
    if (mine !== sequence) return; // something else was chosen while it loaded
    const type = blob.type && blob.type.startsWith("image/") ? blob.type : "image/jpeg";
    describe(new File([blob], "example-" + (index + 1) + "." + (type.split("/")[1] || "jpg"), { type }));
    drop.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }));
})();

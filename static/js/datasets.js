/* Datasets list: the upload card (drop zone -> VLUpload -> a new dataset), the one-click
   sources, the live table of datasets and the "queue is down" banner. */
(function () {
  "use strict";
  const { el, badge, progressBar, bytes, ago, duration } = window.VL;
  const { ChunkedUpload, Cancelled, api } = window.VLUpload;
  const ACTIVE = ["pending", "ingesting"];

  const $ = id => document.getElementById(id);
  const form = $("upload-form");
  const zone = $("dropzone");
  const input = $("upload-file");
  const nameInput = $("upload-name");
  const kindSelect = $("upload-kind");
  const startButton = $("upload-start");
  const pauseButton = $("upload-pause");
  const cancelButton = $("upload-cancel");
  const progressBox = $("upload-progress");
  const bar = $("upload-bar");
  const statusLine = $("upload-status");
  const errorBox = $("upload-error");
  const note = $("upload-note");

  let file = null;       // the chosen File
  let upload = null;     // its ChunkedUpload
  let running = false;   // sending chunks or creating the dataset
  let finished = null;   // a finished upload whose dataset could not be made yet (e.g. queue down)

  VL.localize();  // the largest upload, in KiB/MiB

  /* ---- the form's states ---- */

  function showError(message) {
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
  }

  function showStatus(message) {
    statusLine.textContent = message || "";
    statusLine.hidden = !message;
  }

  function setBusy(busy) {
    zone.classList.toggle("disabled", busy);
    input.disabled = busy;
    startButton.hidden = busy;
    pauseButton.hidden = !busy;
    cancelButton.hidden = !busy;
    note.hidden = !busy;
    pauseButton.textContent = "Pause";
  }

  function drawProgress(p) {
    const pct = p.sent >= p.total ? 100 : Math.floor(p.fraction * 100);
    progressBox.hidden = false;
    bar.querySelector(".bar").style.width = pct + "%";
    bar.setAttribute("aria-valuenow", pct);
    $("upload-percent").textContent = pct + "%";
    $("upload-sent").textContent = bytes(p.sent) + " of " + bytes(p.total);
    let rate = "";
    if (p.sent >= p.total) rate = "";
    else if (upload && upload.paused) rate = "paused";
    else if (p.speed) rate = (p.speed / 1e6).toFixed(1) + " MB/s · " + (p.eta < 1 ? "a moment" : duration(p.eta)) + " left";
    $("upload-rate").textContent = rate;
  }

  function resetProgress() {
    drawProgress({ sent: 0, total: 0, fraction: 0, speed: null, eta: null });
    progressBox.hidden = true;
  }

  function isZip(f) {
    return /\.zip$/i.test(f.name);
  }

  /* Why a file named .zip is not one, from its first bytes ("" when it starts like a zip): said at
     once, before a byte is sent. The server refuses it too, when it reads the archive. */
  const ZIP_STARTS = [[0x50, 0x4b, 0x03, 0x04], [0x50, 0x4b, 0x05, 0x06]];
  const OTHER_FILES = [
    [[0xff, 0xd8, 0xff], "a JPEG image"], [[0x89, 0x50, 0x4e, 0x47], "a PNG image"], [[0x47, 0x49, 0x46, 0x38], "a GIF image"],
    [[0x25, 0x50, 0x44, 0x46], "a PDF document"], [[0x1f, 0x8b], "a gzip file (.gz or .tar.gz)"],
    [[0x52, 0x61, 0x72, 0x21], "a RAR archive"], [[0x37, 0x7a, 0xbc, 0xaf], "a 7-Zip archive"],
  ];
  async function notAZip(f) {
    const head = new Uint8Array(await f.slice(0, 8).arrayBuffer());
    const startsWith = bytes => bytes.every((b, i) => head[i] === b);
    if (!head.length) return "“" + f.name + "” is empty. Choose the .zip of your images.";
    if (ZIP_STARTS.some(startsWith)) return "";
    const other = OTHER_FILES.find(([bytes]) => startsWith(bytes));
    return "“" + f.name + "” is not a zip archive: " + (other ? "its first bytes are those of " + other[1] : "it does not start like one") +
      ". Choose the .zip of your images itself (one folder per class, or images with a captions file).";
  }

  async function choose(chosen) {
    if (!chosen || running) return;
    showError("");
    showStatus("");
    finished = null;
    upload = null;
    if (!isZip(chosen)) {
      file = null;
      startButton.disabled = true;
      $("dropzone-title").textContent = "Drop a .zip here";
      showError("“" + chosen.name + "” is not a .zip archive. Put your images in a zip (one folder per class, or images with a captions file) and choose that.");
      return;
    }
    const problem = await notAZip(chosen).catch(() => "");  // unreadable here: the server will say
    if (problem) {
      file = null;
      startButton.disabled = true;
      zone.classList.remove("chosen");
      $("dropzone-title").textContent = "Drop a .zip here";
      showError(problem);
      return;
    }
    file = chosen;
    zone.classList.add("chosen");
    $("dropzone-title").textContent = chosen.name;
    $("dropzone-sub").textContent = bytes(chosen.size) + " · click or drop to choose another file";
    nameInput.placeholder = chosen.name.replace(/\.zip$/i, "");
    startButton.textContent = "Upload";
    startButton.disabled = false;
    resetProgress();
    // An earlier visit may have sent part of this very file: offer to continue it.
    const earlier = await ChunkedUpload.find(chosen);
    if (earlier && file === chosen && !running) {
      if (earlier.name && !nameInput.value) nameInput.value = earlier.name;
      if (earlier.kind) { kindSelect.value = earlier.kind; showHint(); }
      const pct = Math.floor(earlier.fraction * 100);
      startButton.textContent = earlier.complete ? "Create dataset" : "Resume upload";
      showStatus(earlier.complete ? "This file is already uploaded." : "This file was partly uploaded before: " + pct + "% is already on the server.");
      drawProgress({ sent: earlier.offset, total: chosen.size, fraction: earlier.fraction, speed: null, eta: null });
    }
  }

  async function run() {
    if (!file || running) return;
    running = true;
    showError("");
    const extra = () => ({ name: nameInput.value.trim(), kind: kindSelect.value });
    let done = finished;
    if (!done) {
      upload = new ChunkedUpload(file, { onProgress: drawProgress, onStatus: showStatus });
      setBusy(true);
      showStatus("");
      try {
        done = await upload.start(extra());
      } catch (err) {
        const cancelled = err instanceof Cancelled;
        running = false;
        setBusy(false);
        if (cancelled) {
          resetProgress();
          showStatus("Upload cancelled.");
          startButton.textContent = "Upload";
        } else {
          showStatus("");
          showError(err.message);
          startButton.textContent = "Try again";
        }
        return;
      }
      finished = done;
      pauseButton.hidden = true;
      cancelButton.hidden = true;
      note.hidden = true;
    }
    showStatus("Upload complete. Creating the dataset…");
    startButton.disabled = true;
    try {
      const dataset = await api("POST", "/api/datasets/", { upload: done.id, ...extra() });
      upload.forget();
      window.location.assign("/datasets/" + dataset.id + "/");
    } catch (err) {
      running = false;
      setBusy(false);
      startButton.disabled = false;
      progressBox.hidden = false;
      showStatus("");
      showError(err.message + " Your file is uploaded and kept: press “Create dataset” to try again.");
      startButton.textContent = "Create dataset";
    }
  }

  /* ---- wiring ---- */

  function showHint() {
    document.querySelectorAll("#kind-hint [data-kind]").forEach(span => { span.hidden = span.dataset.kind !== kindSelect.value; });
  }
  kindSelect.addEventListener("change", showHint);
  showHint();

  input.addEventListener("change", () => {
    if (input.files.length) choose(input.files[0]);
    input.value = ""; // choosing the same file again (after a cancel) must fire "change" again
  });
  ["dragenter", "dragover"].forEach(type => zone.addEventListener(type, event => {
    event.preventDefault();
    if (!running) zone.classList.add("dragover");
  }));
  ["dragleave", "dragend"].forEach(type => zone.addEventListener(type, event => {
    if (!zone.contains(event.relatedTarget)) zone.classList.remove("dragover");
  }));
  zone.addEventListener("drop", event => {
    event.preventDefault();
    zone.classList.remove("dragover");
    const dropped = event.dataTransfer && event.dataTransfer.files;
    if (!dropped || !dropped.length) return;
    if (dropped.length > 1) showError("Drop one .zip at a time.");
    else choose(dropped[0]);
  });
  // A file dropped next to the zone would make the browser open it and leave the page.
  window.addEventListener("dragover", event => event.preventDefault());
  window.addEventListener("drop", event => event.preventDefault());

  form.addEventListener("submit", event => { event.preventDefault(); run(); });
  pauseButton.addEventListener("click", () => {
    if (!running || !upload) return;
    if (upload.paused) { upload.resume(); pauseButton.textContent = "Pause"; }
    else { upload.pause(); pauseButton.textContent = "Resume"; $("upload-rate").textContent = "paused"; }
  });
  cancelButton.addEventListener("click", () => { if (running && upload) upload.cancel(); });

  /* ---- the table ---- */

  const tbody = document.querySelector("#datasets-table tbody");
  const KIND_LABELS = { classification: "Classification", captions: "Captions" };

  function contents(d) {
    if (d.status !== "ready") return "—";
    return d.kind === "captions" ? d.num_captions.toLocaleString() + " captions"
      : d.classes.length + (d.classes.length === 1 ? " class" : " classes");
  }

  function statusCell(d) {
    const cell = el("td", {}, badge(d.status));
    if (ACTIVE.includes(d.status)) {
      const job = d.job || { progress: 0, message: "" };
      cell.append(progressBar(job.progress), el("div", { class: "small muted" },
        job.message || (d.status === "pending" ? "Waiting for a worker" : "Reading the archive")));
    } else if (d.status === "failed" && d.error) {
      cell.append(el("div", { class: "small dataset-error" }, d.error));
    }
    return cell;
  }

  function row(d) {
    return el("tr", { "data-dataset": d.id },
      el("td", {}, el("a", { href: "/datasets/" + d.id + "/" }, d.name),
        d.original_filename ? el("div", { class: "small muted" }, d.original_filename) : null),
      el("td", {}, KIND_LABELS[d.kind] || d.kind),
      statusCell(d),
      el("td", { class: "num" }, d.status === "ready" ? d.num_items.toLocaleString() : "—"),
      el("td", { class: "num" }, contents(d)),
      el("td", { class: "num" }, d.archive_bytes ? bytes(d.archive_bytes) : "—"),
      el("td", { title: new Date(d.created_at).toLocaleString() }, ago(d.created_at)));
  }

  function render(datasets) {
    if (!datasets.length) {
      tbody.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 7 },
        "No datasets yet. Upload a zip above, or add a ready-made one to train on at once.")));
      return;
    }
    tbody.replaceChildren(...datasets.map(row));
  }

  /* Poll fast while something is being read, slowly otherwise, rarely in a hidden tab. */
  let timer = null;
  let busy = true;
  async function refresh() {
    clearTimeout(timer);
    try {
      // Every dataset, in pages of up to 200; a session that ended reloads the page.
      const datasets = await VL.allPages("/api/datasets/?page_size=200", { reloadWhenLoggedOut: true });
      busy = datasets.some(d => ACTIVE.includes(d.status));
      render(datasets);
    } catch (err) { /* keep the last table; try again later */ }
    timer = setTimeout(refresh, document.hidden ? 30000 : busy ? 2000 : 15000);
  }
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  refresh();

  /* ---- the queue banner ---- */

  const problem = $("queue-problem");
  VL.poll("/api/queue-status/", status => {
    problem.hidden = status.ok;
    document.querySelectorAll(".source-form button").forEach(button => { button.disabled = !status.ok; });
  }, { interval: 5000, hiddenInterval: 30000 });
})();

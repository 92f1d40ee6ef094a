/* Resumable chunked uploads (window.VLUpload), for any page that sends a big file.

   Protocol (webapp/datasets/api.py, UploadViewSet):
     POST   /api/uploads/        {filename, size}   -> {id, offset, size, chunk_size, complete}
     PUT    /api/uploads/<id>/   raw bytes + "Content-Range: bytes START-END/TOTAL"
                                 -> the upload with its new offset; 409 {detail, offset} when
                                 START is not where the server's file ends
     GET    /api/uploads/<id>/   -> the offset, after a reload or a dropped connection
     DELETE /api/uploads/<id>/   on cancel
   The file is sliced, never read whole, so memory stays flat for a 10 GiB archive. The upload
   id is remembered in localStorage under the file's name, size and date, so choosing the same
   file after a reload (or on another day) continues where it stopped. */
(function () {
  "use strict";

  const STORE_PREFIX = "visionlab:upload:";
  const MAX_TRIES = 10;
  const RETRY_DELAYS = [1, 2, 4, 8]; // seconds; the last one repeats

  class Cancelled extends Error {
    constructor() { super("The upload was cancelled."); }
  }

  function storeKey(file) {
    return STORE_PREFIX + file.name + ":" + file.size + ":" + file.lastModified;
  }

  function remembered(file) {
    try {
      const raw = window.localStorage.getItem(storeKey(file));
      return raw ? JSON.parse(raw) : null;
    } catch (err) {
      return null; // storage disabled or a foreign value: start afresh
    }
  }

  function remember(file, value) {
    try {
      if (value) window.localStorage.setItem(storeKey(file), JSON.stringify(value));
      else window.localStorage.removeItem(storeKey(file));
    } catch (err) { /* private mode: the upload still works, it just cannot resume */ }
  }

  /* The sentence for an upload call the server answered without one (status 0: no answer). */
  function unanswered(status) {
    if (status === 0) return "The server could not be reached.";
    if (status === 413) return "The file is larger than this server accepts.";
    if (status >= 500) return "The server could not take the request (error " + status + "). Try again in a moment.";
    return "The request was refused (error " + status + ").";
  }

  /* VL.api with the upload's sentences; errors carry .status (0: no answer) and .data. */
  function api(method, url, json) {
    return VL.api(url, { method, json, fallback: unanswered });
  }

  /* One file's upload. Callbacks (all optional):
       onProgress({sent, total, fraction, speed (bytes/s, smoothed) or null, eta (s) or null})
       onStatus(sentence or "")   "Resuming from 43%", "Connection lost — retrying…", "Paused"
     start() resolves with the finished upload's JSON, or rejects with VL.api's Error (Cancelled
     after cancel()). */
  class ChunkedUpload {
    constructor(file, callbacks) {
      this.file = file;
      this.on = Object.assign({ onProgress: () => {}, onStatus: () => {} }, callbacks);
      this.id = null;
      this.offset = 0;
      this.chunkSize = 8 * 1024 * 1024;
      this.paused = false;
      this.cancelled = false;
      this.xhr = null;
      this._wake = null;
      this._pendingRefresh = false;
      this._rate = null;        // smoothed bytes per second
      this._sample = null;      // [time, bytes] of the last speed sample
    }

    /* What an earlier session left for this file, if anything: {id, name, kind, fraction}. */
    static async find(file) {
      const saved = remembered(file);
      if (!saved || !saved.id) return null;
      try {
        const upload = await api("GET", "/api/uploads/" + encodeURIComponent(saved.id) + "/");
        if (upload.size !== file.size) { remember(file, null); return null; }
        return Object.assign({}, saved, { offset: upload.offset, fraction: upload.offset / upload.size, complete: upload.complete });
      } catch (err) {
        if (err.status === 404) remember(file, null); // finished, cancelled or expired
        return null;
      }
    }

    /* Keep extra values (the dataset's name and kind) with the remembered id. */
    remember(extra) {
      if (this.id) remember(this.file, Object.assign({ id: this.id }, extra));
    }

    forget() { remember(this.file, null); }

    async start(extra) {
      const saved = remembered(this.file);
      if (saved && saved.id) {
        try {
          const upload = await api("GET", "/api/uploads/" + encodeURIComponent(saved.id) + "/");
          if (upload.size === this.file.size) this._adopt(upload);
        } catch (err) {
          if (err.status !== 404) throw err;
        }
      }
      if (this.id) {
        if (this.offset >= this.file.size) this.on.onStatus("The whole file is already on the server.");
        else if (this.offset > 0) this.on.onStatus("Resuming from " + Math.floor(100 * this.offset / this.file.size) + "%");
      } else {
        this._adopt(await api("POST", "/api/uploads/", { filename: this.file.name, size: this.file.size }));
      }
      this.remember(extra);
      this._report(this.offset);
      await this._send();
      return { id: this.id, offset: this.offset, size: this.file.size, complete: true };
    }

    _adopt(upload) {
      this.id = upload.id;
      this.offset = upload.offset;
      if (upload.chunk_size) this.chunkSize = upload.chunk_size;
    }

    async _send() {
      let tries = 0;
      let conflicts = 0;
      while (this.offset < this.file.size) {
        try {
          await this._whileRunning();
          if (tries > 0) await this._refreshOffset(); // where did the lost chunk stop?
          const upload = await this._put(this.offset, Math.min(this.offset + this.chunkSize, this.file.size));
          this.offset = upload.offset;
          if (tries > 0) this.on.onStatus("");
          tries = 0;
          conflicts = 0;
        } catch (err) {
          if (this.cancelled || err instanceof Cancelled) throw new Cancelled();
          if (err.status === 409 && err.data && typeof err.data.offset === "number" && conflicts < 5) {
            conflicts += 1;
            this.offset = err.data.offset; // the server knows better: continue from there
            this._report(this.offset);
            continue;
          }
          if (err.aborted && this.paused) continue; // paused mid-chunk: resume re-reads the offset
          if (!transient(err)) throw err;
          tries += 1;
          if (tries > MAX_TRIES) {
            throw VL.apiError(err.status, null, "The connection to the server keeps failing. Choose the file again later: the upload resumes where it stopped.");
          }
          const delay = RETRY_DELAYS[Math.min(tries - 1, RETRY_DELAYS.length - 1)];
          this.on.onStatus("Connection lost — retrying… (attempt " + tries + " of " + MAX_TRIES + ", in " + delay + " s)");
          await this._sleep(delay * 1000);
          if (this.cancelled) throw new Cancelled();
        }
        this._report(this.offset);
      }
    }

    async _refreshOffset() {
      const upload = await api("GET", "/api/uploads/" + encodeURIComponent(this.id) + "/");
      this.offset = upload.offset;
      this._report(this.offset);
    }

    /* PUT bytes [start, end) with XMLHttpRequest: its upload.onprogress moves the bar inside a chunk. */
    _put(start, end) {
      return new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        this.xhr = xhr;
        xhr.open("PUT", "/api/uploads/" + encodeURIComponent(this.id) + "/");
        xhr.setRequestHeader("Content-Type", "application/octet-stream");
        xhr.setRequestHeader("Content-Range", "bytes " + start + "-" + (end - 1) + "/" + this.file.size);
        xhr.setRequestHeader("X-CSRFToken", VL.csrfToken());
        xhr.setRequestHeader("Accept", "application/json");
        xhr.responseType = "text";
        xhr.upload.onprogress = event => this._report(start + Math.min(event.loaded, end - start));
        xhr.onload = () => {
          this.xhr = null;
          let data = null;
          try { data = JSON.parse(xhr.responseText); } catch (err) { data = null; }
          if (xhr.status >= 200 && xhr.status < 300 && data) resolve(data);
          else reject(VL.apiError(xhr.status, data, unanswered));
        };
        xhr.onerror = () => { this.xhr = null; reject(VL.apiError(0, null, "The connection was lost.")); };
        xhr.ontimeout = xhr.onerror;
        xhr.onabort = () => {
          this.xhr = null;
          const err = VL.apiError(0, null, "The chunk was interrupted.");
          err.aborted = true;
          reject(err);
        };
        xhr.send(this.file.slice(start, end));
      });
    }

    _report(sent) {
      const now = performance.now();
      if (!this._sample || sent < this._sample[1]) {
        this._sample = [now, sent];
      } else if (now - this._sample[0] >= 500) {
        const rate = (sent - this._sample[1]) / ((now - this._sample[0]) / 1000);
        this._rate = this._rate === null ? rate : 0.7 * this._rate + 0.3 * rate;
        this._sample = [now, sent];
      }
      const total = this.file.size;
      const speed = this.paused ? null : this._rate;
      this.on.onProgress({
        sent, total, fraction: total ? sent / total : 1, speed,
        eta: speed ? (total - sent) / speed : null,
      });
    }

    pause() {
      if (this.paused || this.cancelled) return;
      this.paused = true;
      this._rate = null;
      this._sample = null;
      if (this.xhr) this.xhr.abort();
      this.on.onStatus("Paused. Resume whenever you like, even after closing this page.");
    }

    resume() {
      if (!this.paused || this.cancelled) return;
      this.paused = false;
      this.on.onStatus("");
      this._pendingRefresh = true;
      if (this._wake) this._wake();
    }

    async cancel() {
      this.cancelled = true;
      if (this.xhr) this.xhr.abort();
      if (this._wake) this._wake();
      this.forget();
      if (this.id) {
        try { await api("DELETE", "/api/uploads/" + encodeURIComponent(this.id) + "/"); } catch (err) { /* gone already */ }
      }
    }

    /* Wait while paused; after a pause, learn the offset again (the cut chunk may have landed in part). */
    async _whileRunning() {
      while (this.paused && !this.cancelled) {
        await new Promise(resolve => { this._wake = resolve; });
        this._wake = null;
      }
      if (this.cancelled) throw new Cancelled();
      if (this._pendingRefresh) {
        this._pendingRefresh = false;
        await this._refreshOffset();
      }
    }

    /* A retry's wait; Resume or Cancel ends it early. */
    _sleep(ms) {
      return new Promise(resolve => {
        const timer = setTimeout(resolve, ms);
        this._wake = () => { clearTimeout(timer); resolve(); };
      }).then(() => { this._wake = null; });
    }
  }

  function transient(err) {
    return err.status === 0 || err.status === 502 || err.status === 503 || err.status === 504 || err.status === 408;
  }

  window.VLUpload = { ChunkedUpload, Cancelled, api };
})();

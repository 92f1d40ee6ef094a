/* The job page's Record card: file the run in a project, tag it, write a note (PATCH
   /api/jobs/{id}/), and Run again (POST /api/jobs/{id}/rerun/, then open the new run). Errors are
   the API's sentences, shown in the card. */
(function () {
  "use strict";
  const form = document.getElementById("record-form");
  if (!form) return;
  const url = "/api/jobs/" + form.dataset.job + "/";
  const status = document.getElementById("record-status");
  const error = document.getElementById("record-error");

  async function send(path, method, json) {
    error.hidden = true;
    try {
      return await VL.api(path, { method, json, fallback: code => (code ? "Something went wrong; please try again." : undefined) });
    } catch (err) {
      error.textContent = VL.errorText(err.data) || err.message;  // the fields' sentences, without their names
      error.hidden = false;
      status.textContent = "";
      return null;
    }
  }

  form.addEventListener("submit", async event => {
    event.preventDefault();
    status.textContent = "Saving…";
    const tags = form.tags.value.split(",").map(t => t.trim()).filter(Boolean);
    const saved = await send(url, "PATCH", { project: form.project.value.trim(), tags, note: form.note.value });
    if (saved) {
      form.tags.value = saved.tags.join(", ");
      form.project.value = saved.project;
      status.textContent = "Saved.";
    }
  });

  const rerun = document.getElementById("rerun");
  if (rerun) {
    rerun.addEventListener("click", async () => {
      rerun.disabled = true;
      status.textContent = "Starting the same run again…";
      const job = await send(url + "rerun/", "POST");
      if (job) window.location.assign("/jobs/" + job.id + "/");
      else rerun.disabled = false;
    });
  }
})();

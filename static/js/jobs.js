/* Jobs list: redraws the table from /api/jobs/ and shows or hides the "queue is down" banner. */
(function () {
  "use strict";
  const { el, badge, progressBar, duration, ago } = window.VL;
  const tbody = document.querySelector("#jobs-table tbody");
  const problem = document.getElementById("queue-problem");
  const launchButton = document.querySelector("#launch-system-check button");

  function row(job) {
    return el("tr", { "data-job": job.id },
      el("td", {}, el("a", { href: "/jobs/" + job.id + "/" }, job.kind_label + " #" + job.id)),
      el("td", {}, badge(job.status)),
      el("td", {}, progressBar(job.progress), el("div", { class: "small muted" }, job.error ? "Failed: " + job.error : job.message)),
      el("td", {}, job.worker || "—"),
      el("td", {}, ago(job.started_at)),
      el("td", {}, duration(job.duration_seconds)));
  }

  function render(jobs) {
    if (!jobs.length) {
      tbody.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 6 }, "No jobs yet. Run a system check to see a worker at work.")));
      return;
    }
    tbody.replaceChildren(...jobs.map(row));
  }

  VL.poll("/api/jobs/?limit=50", render, { interval: 1500, hiddenInterval: 15000 });
  VL.poll("/api/queue-status/", function (status) {
    problem.hidden = status.ok;
    if (launchButton) launchButton.disabled = !status.ok;
  }, { interval: 5000, hiddenInterval: 30000 });
})();

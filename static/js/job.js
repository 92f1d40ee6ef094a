/* One job: status, progress, facts, parameters and result, live until the job ends. */
(function () {
  "use strict";
  const { el, badge, duration, bytes } = window.VL;
  const jobId = VL.json("job-id");

  function when(iso) { return iso ? new Date(iso).toLocaleString() : null; }

  function facts(node, pairs) {
    node.replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v === null || v === undefined || v === "" ? "—" : v)]));
  }

  function systemCheck(result) {
    const table = el("table", { class: "table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Device"), el("th", {}, "Name"), el("th", {}, "Memory"), el("th", {}, "Matrix multiply"))),
      el("tbody", {}, ...result.devices.map(d => el("tr", {},
        el("td", {}, d.type + (d.tf_name ? " (" + d.tf_name + ")" : "")),
        el("td", {}, d.name + (d.cores ? " · " + d.cores + " cores" : "")),
        el("td", {}, bytes(d.memory_bytes)),
        el("td", { class: "num", "data-testid": "gflops" }, d.gflops + " GFLOP/s"),
      ))));
    const env = el("dl", { class: "facts" });
    facts(env, [["Host", result.host], ["Platform", result.platform], ["Python", result.python],
      ["TensorFlow", result.tensorflow + (result.built_with_cuda ? " (CUDA build)" : " (CPU build)")],
      ["Keras", result.keras], ["NumPy", result.numpy]]);
    return el("div", {}, table, el("h3", {}, "Environment"), env);
  }

  function render(job) {
    const status = document.getElementById("job-status");
    status.replaceWith(Object.assign(badge(job.status), { id: "job-status" }));
    document.getElementById("job-status").setAttribute("data-testid", "job-status");
    const pct = Math.round(job.progress * 100);
    const bar = document.querySelector("#job-progress .bar");
    bar.style.width = pct + "%";
    document.getElementById("job-progress").setAttribute("aria-valuenow", pct);
    document.getElementById("job-message").textContent = job.message || "";
    document.getElementById("job-percent").textContent = pct + "%";
    const error = document.getElementById("job-error");
    error.hidden = !job.error;
    error.textContent = job.error || "";
    document.getElementById("cancel-form").hidden = !VL.ACTIVE.includes(job.status) || job.cancel_requested;
    facts(document.getElementById("job-facts"), [
      ["Dataset", job.dataset ? el("a", { href: "/datasets/" + job.dataset + "/" }, job.params.dataset_name || "#" + job.dataset)
        : (job.params.dataset_name ? job.params.dataset_name + " (deleted)" : null)],
      ["Queue", job.queue], ["Worker", job.worker], ["Device", job.device],
      ["Created", when(job.created_at)], ["Started", when(job.started_at)],
      ["Finished", when(job.finished_at)], ["Duration", duration(job.duration_seconds)],
    ]);
    facts(document.getElementById("job-params"), Object.entries(job.params).map(([k, v]) => [k.replace(/_/g, " "), JSON.stringify(v)]));
    const card = document.getElementById("result-card");
    if (job.result) {
      card.hidden = false;
      document.getElementById("job-result").replaceChildren(job.kind === "system_check" ? systemCheck(job.result)
        : el("pre", {}, JSON.stringify(job.result, null, 2)));
    }
  }

  VL.poll("/api/jobs/" + jobId + "/", render, { interval: 700, until: job => !VL.ACTIVE.includes(job.status) });
})();

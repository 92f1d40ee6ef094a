/* Workers: each live worker (queues, devices, running jobs) and the queue, live. */
(function () {
  "use strict";
  const { el, bytes, ago, progressBar } = window.VL;

  function jobLabel(job) {
    return job.mine ? el("a", { href: "/jobs/" + job.id + "/" }, job.kind + " #" + job.id) : el("span", { class: "muted" }, job.kind + " (another user's job)");
  }

  function card(worker) {
    const devices = el("ul", { class: "devices" }, ...worker.devices.map(d => el("li", {},
      el("span", { class: "tag tag-" + d.type.toLowerCase() }, d.type), " ", d.name,
      d.cores ? " · " + d.cores + " cores" : "", d.memory_bytes ? " · " + bytes(d.memory_bytes) : "")));
    const running = worker.running.length
      ? el("ul", { class: "running" }, ...worker.running.map(j => el("li", {}, jobLabel(j), progressBar(j.progress))))
      : el("p", { class: "muted" }, "Idle: waiting for work.");
    return el("section", { class: "card worker", "data-worker": worker.hostname },
      el("h2", {}, el("span", { class: "dot dot-live", title: "alive" }), worker.hostname),
      el("p", {}, "Queues: ", ...worker.queues.map(q => el("span", { class: "tag" }, q)),
        worker.concurrency ? el("span", { class: "muted" }, " · runs " + worker.concurrency + " job" + (worker.concurrency > 1 ? "s" : "") + " at a time") : ""),
      el("h3", {}, "Devices"), devices,
      el("h3", {}, "Running now"), running,
      el("p", { class: "small muted" }, "Last heartbeat " + ago(new Date(worker.last_seen * 1000).toISOString())));
  }

  function render(snapshot) {
    document.getElementById("workers-problem").hidden = !snapshot.redis_error;
    const box = document.getElementById("workers");
    box.replaceChildren(...(snapshot.workers.length ? snapshot.workers.map(card)
      : [el("section", { class: "card" }, el("h2", {}, "No worker is running"),
          el("p", { class: "muted" }, "Jobs wait in the queue until a worker starts. `make run` starts one; see the README to add more."))]));
    const tbody = document.querySelector("#queued-table tbody");
    tbody.replaceChildren(...(snapshot.queued.length ? snapshot.queued.map((job, i) => el("tr", {},
      el("td", {}, i + 1), el("td", {}, jobLabel(job)), el("td", {}, el("span", { class: "tag" }, job.queue)), el("td", {}, ago(job.created_at))))
      : [el("tr", { class: "empty" }, el("td", { colspan: 4 }, "Nothing is waiting."))]));
  }

  render(VL.json("workers-snapshot"));
  VL.poll("/api/workers/", render, { interval: 3000, hiddenInterval: 20000 });
})();

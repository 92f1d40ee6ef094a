"""Every page at every width, and curves that tell the truth (issue 15, items 12 and 13), in Debian's
chromium through Playwright on the live server.

A person's lab as the worker leaves it, with the names people really type: a dataset, a model, a
project and a tag called by sixty letters without a space, classes just as long, a finished
classifier with its confusion matrix, per-class table and mistakes, a caption model shared as a demo.
Every page is opened once and looked at 1366, 1024, 820 and 390 px wide: nothing scrolls sideways,
nothing sticks out, a name cut short shows in full on hover, and every link of the top bar can be
reached, in the bar or from its menu. The job page draws no empty chart, a running job's x-axis spans
its planned epochs, and "best so far" becomes "best" once the job has ended.

The rows are made through the ORM: these checks are about the pages, not the worker.
"""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser_fixtures import NO_SIDEWAYS_SCROLL, WIDE, log_in
from tests.test_job_lists import curve, run
from webapp.datasets.models import Dataset, DatasetItem
from webapp.demos.models import ShareLink
from webapp.experiments.models import Project, TrainedModel
from webapp.jobs.models import Job, JobMetric
from webapp.sweeps.models import Sweep

pytestmark = [pytest.mark.browser]

WIDTHS = (1366, 1024, 820, 390)
LONG = "a" * 60  # a name without a space, as long as people make them
CLASSES = ["b" * 40, "c" * 40, "short"]

# Text cut short with an ellipsis whose full wording is nowhere on hover (a title on it or around it).
CUT_WITHOUT_TITLE = """() => [...document.querySelectorAll("body *")].filter(e => {
  const style = getComputedStyle(e);
  const text = e.textContent.trim();
  const cut = style.textOverflow === "ellipsis" && e.scrollWidth > e.clientWidth + 1;
  if (!cut || !text || e.clientWidth < 2) return false;  // whole, or an empty or visually hidden box
  for (let p = e; p; p = p.parentElement) if (p.title && p.title.includes(text)) return false;
  return true;
}).slice(0, 8).map(e => e.tagName.toLowerCase() + "." + e.className + ": " + e.textContent.trim().slice(0, 30))"""

# Whether the top bar's links overflow their row (and scroll inside it): the menu should have taken them.
NAV_SCROLLS = "() => { const nav = document.querySelector('.mainnav'); return nav.scrollWidth > nav.clientWidth + 1; }"

# The top bar's links (and Log out) that a person can see and reach: shown, and inside the window.
NAV_REACHABLE = """() => [...document.querySelectorAll(".mainnav a, .usermenu a, .usermenu button")].map(e => {
  const box = e.getBoundingClientRect();
  const inside = box.left >= 0 && box.right <= document.documentElement.clientWidth + 1;
  return [e.textContent.trim(), e.checkVisibility() && box.width > 0 && inside];
})"""


@pytest.fixture
def lab(alice):
    """Alice's lab with long unbroken names everywhere a name goes."""
    project = Project.objects.create(owner=alice, name="p" * 60)
    dataset = Dataset.objects.create(
        owner=alice, name=LONG, kind="classification", status="ready", num_items=45, ready_at=timezone.now(),
        classes=[{"name": name, "count": 15} for name in CLASSES], split_counts={"train": 30, "val": 6, "test": 9},
        original_filename=LONG + ".zip", skipped=[{"path": f"{LONG}/{LONG}.txt", "reason": "not an image"}])
    DatasetItem.objects.bulk_create(
        DatasetItem(dataset=dataset, path=f"{name}/{i}.png", original=f"{name}/{i}.png", label=name, split="train",
                    width=8, height=8, mode="L", format="PNG", checksum=str(i), thumbnail=f"{name}/{i}.jpg")
        for name in CLASSES for i in range(3))
    matrix = [[12, 3, 0], [1, 14, 2], [0, 4, 9]]
    per_class = [{"name": name, "precision": 0.8, "recall": 0.75, "f1": 0.77, "support": 15} for name in CLASSES]
    mistakes = [{"path": f"{CLASSES[i % 3]}/{i}.png", "true": CLASSES[i % 3], "predicted": CLASSES[(i + 1) % 3],
                 "confidence": 0.9 - i / 20, "item": None} for i in range(6)]
    classifier = run(alice, "classifier", dataset=dataset, project=project, tags=["t" * 50], seconds=40,
                     epochs=curve([0.5, 0.7, 0.8]),
                     result={"test_accuracy": 0.78, "test_loss": 0.6, "confusion_matrix": matrix, "classes": CLASSES,
                             "per_class": per_class, "mistakes": mistakes, "best_epoch": 3, "train_seconds": 40})
    other = run(alice, "other", dataset=dataset, project=project, seconds=30, epochs=curve([0.4, 0.6]),
                result={"test_accuracy": 0.6})
    model = TrainedModel.objects.create(owner=alice, job=classifier, name=LONG, architecture="lenet5", dataset=dataset,
                                        class_names=CLASSES, image_size=28, channels=1, test_accuracy=0.78,
                                        trained_on=LONG)
    captioner = run(alice, "captioner", kind=Job.Kind.TRAIN_CAPTIONER, architecture="merge", dataset=dataset,
                    seconds=20, epochs=[{"epoch": 1, "loss": 3.0, "val_loss": 3.2}],
                    result={"bleu1": 0.5, "bleu4": 0.2})
    captions = TrainedModel.objects.create(owner=alice, job=captioner, task="caption", name=LONG, architecture="merge",
                                           dataset=dataset, image_size=224, channels=3, trained_on=LONG)
    Sweep.objects.create(owner=alice, project=project, dataset=dataset, name=LONG, kind="train", method="grid",
                         trials=4, metric="val_accuracy", direction="max", study_name="layout", status="finished",
                         params={"architecture": "mlp", "dataset_name": LONG}, space={})
    return {"dataset": dataset, "classifier": classifier, "other": other, "model": model,
            "demo": ShareLink.objects.create(model=captions)}


def settle(page: Page, check: str, timeout: int = 3_000) -> None:
    """Wait for `check` to hold: charts follow their box a frame after the window is resized."""
    try:
        page.wait_for_function(check, timeout=timeout)
    except PlaywrightTimeoutError:
        pass  # the caller's assertion says what is wrong


# Everything one look at a page reports, in one round trip.
LOOK = f"""() => {{
  const toggle = document.querySelector(".menu-toggle"), main = document.querySelector("main");
  return {{fits: ({NO_SIDEWAYS_SCROLL})(), wide: ({WIDE})(), cut: ({CUT_WITHOUT_TITLE})(),
    menu: !!toggle && getComputedStyle(toggle).display !== "none",
    crowded: !!document.querySelector(".mainnav") && ({NAV_SCROLLS})(),
    top: main && main.getBoundingClientRect().top}};
}}"""


def look_at_every_width(page: Page, path: str, problems: list[str], with_nav: bool = True) -> None:
    """The page at each width: nothing sideways, nothing cut without its full name, the top bar's links reachable."""
    toggle = page.get_by_role("button", name="Menu", exact=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        settle(page, f"() => ({NO_SIDEWAYS_SCROLL})() && ({WIDE})().length === 0")
        where = f"{path} at {width} px"
        look = page.evaluate(LOOK)
        if not look["fits"] or look["wide"]:
            problems.append(f"{where} scrolls sideways: {look['wide']} stick out")
        if look["cut"]:
            problems.append(f"{where} cuts names short with no full name on hover: {look['cut']}")
        if not with_nav:
            continue
        if look["crowded"] and not look["menu"]:
            problems.append(f"{where}: the top bar's links do not fit beside each other, yet there is no menu")
        if look["menu"]:
            expect(toggle).to_have_attribute("aria-expanded", "false")
            toggle.click()
            expect(toggle).to_have_attribute("aria-expanded", "true")
            if page.evaluate(LOOK)["top"] != look["top"]:
                problems.append(f"{where}: opening the menu moves the page")
        if hidden := [name for name, shown in page.evaluate(NAV_REACHABLE) if not shown]:
            problems.append(f"{where}: the top bar's {hidden} cannot be reached")
        if look["menu"]:
            toggle.click()
            expect(toggle).to_have_attribute("aria-expanded", "false")
            expect(page.locator(".mainnav")).to_be_hidden()


def test_every_page_fits_every_width_and_the_top_bar_links_stay_reachable(alice, lab, page):
    alice.is_staff = True  # the longest top bar: with the Admin link
    alice.save()
    problems: list[str] = []
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})
    page.goto("/login/")
    look_at_every_width(page, "/login/", problems, with_nav=False)

    log_in(page, "alice", "/datasets/")
    links = page.locator(".mainnav a")
    expect(links).to_contain_text(["Datasets", "Train", "Captions", "Features", "Jobs", "Models", "Sweeps",
                                   "Architectures", "Workers", "API", "Admin"])
    classifier, other = lab["classifier"].id, lab["other"].id
    paths = ["/datasets/", f"/datasets/{lab['dataset'].id}/", "/train/", "/captioner/", "/features/", "/jobs/",
             f"/jobs/{classifier}/", f"/compare/?jobs={classifier},{other}", f"/models/{lab['model'].id}/", "/sweeps/",
             "/architectures/", "/workers/", "/account/", "/models/", f"/demo/{lab['demo'].token}/",
             "/demo/no-such-demo-link/"]
    for path in paths:
        page.set_viewport_size({"width": WIDTHS[0], "height": 900})
        page.goto(path)
        page.wait_for_load_state("load")
        look_at_every_width(page, path, problems, with_nav=not path.startswith("/demo/"))
    assert not problems, "\n".join(problems)

    # The menu by keyboard: Enter opens it, Tab walks its links, Escape closes it and gives the focus back.
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto("/jobs/")
    toggle = page.get_by_role("button", name="Menu", exact=True)
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Tab")
    expect(links.first).to_be_focused()
    page.keyboard.press("Escape")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_be_focused()
    expect(links.first).to_be_hidden()
    # A click elsewhere closes it too; widening the window puts the links back in the bar.
    toggle.click()
    page.locator("footer").click(position={"x": 5, "y": 5})
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    page.set_viewport_size({"width": 1366, "height": 900})
    expect(toggle).to_be_hidden()
    expect(links.first).to_be_visible()
    page.set_viewport_size({"width": 390, "height": 900})
    expect(links.first).to_be_hidden()


CHART_STATE = """() => {
  const chart = Chart.getChart(document.getElementById("loss-chart"));
  return chart ? {labels: chart.data.labels, max: chart.scales.x.max, best: chart.data.datasets[2].label,
                  drawn: chart.data.datasets[0].data.filter(v => v !== null).length} : null;
}"""


def test_the_job_page_draws_no_empty_chart_and_a_running_job_fills_a_frame_of_its_planned_epochs(alice, page):
    queued = Job.objects.create(owner=alice, kind=Job.Kind.TRAIN, params={"architecture": "mlp", "epochs": 10})
    failed = run(alice, "failed", status=Job.Status.FAILED, seconds=3)
    running = run(alice, "running", status=Job.Status.RUNNING, seconds=30, epochs=curve([0.5, 0.7]))
    Job.objects.filter(id=running.id).update(params={**running.params, "epochs": 10})

    # Queued: one sentence where the curves will be, no empty frames.
    log_in(page, "alice", f"/jobs/{queued.id}/")
    expect(page.locator("#curves-card")).to_be_visible()
    expect(page.locator("#curves-empty")).to_have_text("The curves appear here when the first epoch ends.")
    expect(page.locator("#loss-chart")).to_be_hidden()
    # Failed before its first epoch: no curves card at all.
    page.goto(f"/jobs/{failed.id}/")
    expect(page.get_by_test_id("job-status")).to_have_text("failed")
    expect(page.locator("#curves-card")).to_be_hidden()

    # Running: two epochs drawn in a frame of ten, the best one "so far".
    page.goto(f"/jobs/{running.id}/")
    page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('loss-chart'))")
    page.evaluate("window.__noReload = true")
    state = page.evaluate(CHART_STATE)
    assert state["labels"] == list(range(1, 11)) and state["max"] == 9 and state["drawn"] == 2, state
    assert state["best"] == "Best so far (epoch 2)"
    expect(page.locator("#curves-note")).to_contain_text("best so far: epoch 2")
    expect(page.locator("#curves-empty")).to_be_hidden()

    # A third epoch, then the end (stopped early at 3 of 10): the page follows without a reload, the frame
    # shrinks to the epochs it trained, and the best is just "best".
    JobMetric.objects.create(job=running, epoch=3, values={"loss": 0.1, "accuracy": 0.9, "val_loss": 0.2,
                                                           "val_accuracy": 0.88})
    page.wait_for_function(f"() => ({CHART_STATE})().drawn === 3")
    Job.objects.filter(id=running.id).update(status=Job.Status.SUCCEEDED, finished_at=timezone.now(), progress=1.0)
    expect(page.get_by_test_id("job-status")).to_have_text("succeeded")
    expect(page.locator("#curves-note")).to_contain_text("best: epoch 3")
    state = page.evaluate(CHART_STATE)
    assert state["labels"] == [1, 2, 3] and state["best"] == "Best (epoch 3)", state
    assert page.evaluate("window.__noReload") is True, "the job page reloaded itself"

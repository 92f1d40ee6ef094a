/* A ready dataset's images, larger and all of them.

   Any thumbnail on the page (the samples, or the browser) opens the larger view: a <dialog> with the
   full image, its class, file, size and split (and captions), and Previous / Next through the
   thumbnails of the card it was opened from (arrow keys too). A thumbnail opened with Ctrl, Shift or
   the middle button still opens the file in a new tab.

   The browser pages through one class (or every class) and one split, 48 images at a time, from
   GET /api/datasets/<id>/items/. In the larger view, Next past the last image of a page turns the page. */
(function () {
  "use strict";
  const { el } = window.VL;
  const $ = id => document.getElementById(id);
  const data = VL.json("dataset-data");
  const PAGE = 48;
  const SPLITS = { train: "train", val: "validation", test: "test" };

  /* ---- the larger view ---- */

  const box = $("lightbox");
  const image = $("lightbox-image");
  let items = [], index = 0, pager = null;  // what it steps through, and how to reach the next page of it

  function describe(anchor) {
    return {
      image: anchor.href, label: anchor.dataset.label || "", path: anchor.dataset.path || "",
      width: anchor.dataset.width, height: anchor.dataset.height, split: anchor.dataset.split || "",
      captions: anchor.dataset.captions ? anchor.dataset.captions.split("\n").filter(Boolean) : [],
    };
  }

  function show(i) {
    index = i;
    const item = items[i];
    image.src = item.image;
    image.alt = (item.label ? item.label + ": " : "") + item.path;
    $("lightbox-label").textContent = item.label ? "Class " + item.label : "Image";
    $("lightbox-where").textContent = (i + 1) + " of " + items.length + (pager ? " on this page" : "");
    $("lightbox-path").textContent = item.path;
    $("lightbox-facts").textContent = [item.width && item.height ? item.width + "×" + item.height + " px" : "",
      SPLITS[item.split] ? SPLITS[item.split] + " split" : ""].filter(Boolean).join(" · ");
    const captions = $("lightbox-captions");
    captions.replaceChildren(...item.captions.map(text => el("li", {}, text)));
    captions.hidden = !item.captions.length;
    $("lightbox-open").href = item.image;
    $("lightbox-prev").disabled = i === 0 && !(pager && pager.hasPrev());
    $("lightbox-next").disabled = i === items.length - 1 && !(pager && pager.hasNext());
  }

  function open(list, i, paging) {
    items = list;
    pager = paging || null;
    show(i);
    if (!box.open) box.showModal();
    $("lightbox-next").disabled ? $("lightbox-close").focus() : $("lightbox-next").focus();
  }

  async function step(by) {
    const target = index + by;
    if (target >= 0 && target < items.length) { show(target); return; }
    if (!pager) return;
    const list = await (by > 0 ? pager.next() : pager.prev());
    if (list && list.length) { items = list; show(by > 0 ? 0 : list.length - 1); }
  }

  $("lightbox-prev").addEventListener("click", () => step(-1));
  $("lightbox-next").addEventListener("click", () => step(1));
  $("lightbox-close").addEventListener("click", () => box.close());
  box.addEventListener("click", event => { if (event.target === box) box.close(); });  // the backdrop
  box.addEventListener("keydown", event => {
    if (event.key === "ArrowLeft") { event.preventDefault(); step(-1); }
    if (event.key === "ArrowRight") { event.preventDefault(); step(1); }
  });
  box.addEventListener("close", () => { image.removeAttribute("src"); });
  // A small image (digits are 8 or 32 px) is enlarged in sharp pixels rather than blurred.
  image.addEventListener("load", () => image.classList.toggle("pixelated", image.naturalWidth <= 64));

  document.addEventListener("click", event => {
    const anchor = event.target.closest("a.thumb");
    if (!anchor || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    const card = anchor.closest(".card");
    if (!card) return;
    event.preventDefault();
    const anchors = [...card.querySelectorAll("a.thumb")];
    open(anchors.map(describe), anchors.indexOf(anchor), card.id === "browse-card" ? browserPager : null);
  });

  /* ---- the browser ---- */

  const grid = $("browse-thumbs");
  const where = $("browse-where");
  const problem = $("browse-problem");
  const labelSelect = $("browse-label");
  const splitSelect = $("browse-split");
  let offset = 0, count = 0, loading = null;

  function query() {
    const params = new URLSearchParams({ limit: PAGE, offset });
    if (labelSelect && labelSelect.value) params.set("label", labelSelect.value);
    if (splitSelect.value) params.set("split", splitSelect.value);
    return params;
  }

  function thumb(item) {
    return el("a", { class: "thumb", href: item.image_url, target: "_blank", rel: "noopener",
      title: item.path + " · " + item.width + "×" + item.height, "data-label": item.label || "", "data-path": item.path,
      "data-width": item.width, "data-height": item.height, "data-split": item.split,
      "data-captions": (item.captions || []).join("\n") },
    el("img", { src: item.thumbnail_url, alt: item.path, loading: "lazy", width: 96, height: 96 }));
  }

  function describeView() {
    const which = labelSelect && labelSelect.value ? "of “" + labelSelect.value + "”" : "";
    const split = SPLITS[splitSelect.value] ? "in the " + SPLITS[splitSelect.value] + " split" : "";
    if (!count) return "No images " + [which, split].filter(Boolean).join(" ") + ".";
    const last = Math.min(offset + PAGE, count);
    return "Images " + (offset + 1).toLocaleString() + "–" + last.toLocaleString() + " of " + count.toLocaleString()
      + (which || split ? " " + [which, split].filter(Boolean).join(" ") : "") + ".";
  }

  async function load() {
    const mine = loading = new AbortController();
    grid.classList.add("loading");
    let page;
    try {
      page = await VL.api("/api/datasets/" + data.id + "/items/?" + query(), { signal: mine.signal, reloadWhenLoggedOut: true });
    } catch (err) {
      if (err.name === "AbortError") return null;
      problem.textContent = "The images could not be loaded. Check your connection, then choose the class again.";
      problem.hidden = false;
      grid.classList.remove("loading");
      return null;
    }
    if (mine !== loading) return null;
    problem.hidden = true;
    count = page.count;
    grid.replaceChildren(...page.results.map(thumb));
    grid.classList.remove("loading");
    where.textContent = describeView();
    $("browse-pager").hidden = count <= PAGE;
    $("browse-prev").disabled = offset === 0;
    $("browse-next").disabled = offset + PAGE >= count;
    return [...grid.querySelectorAll("a.thumb")].map(describe);
  }

  function turn(by) {
    const target = offset + by * PAGE;
    if (target < 0 || target >= count) return Promise.resolve(null);
    offset = target;
    return load();
  }

  const browserPager = {
    hasNext: () => offset + PAGE < count,
    hasPrev: () => offset > 0,
    next: () => turn(1),
    prev: () => turn(-1),
  };

  $("browse-prev").addEventListener("click", () => turn(-1));
  $("browse-next").addEventListener("click", () => turn(1));
  $("browse-form").addEventListener("change", () => { offset = 0; load(); });
  $("browse-form").addEventListener("submit", event => event.preventDefault());

  document.querySelectorAll("button.browse-class").forEach(button => button.addEventListener("click", () => {
    labelSelect.value = button.dataset.label;
    offset = 0;
    load();
    $("browse-card").scrollIntoView({ block: "start", behavior: "smooth" });
    labelSelect.focus({ preventScroll: true });
  }));

  load();
})();

"""Turn an uploaded zip into a stored dataset: the entry point of the Django-free ingestion core.

The archive is checked as a whole first (hostile paths, sizes, zip bombs, layout), so most
unusable uploads fail before anything is written. Then members are read in archive order on
this thread and decoded, verified, converted and thumbnailed on a small thread pool with a
bounded number in flight; results are written in order and handed to `on_items` in batches.
Memory stays flat however large the archive: per image only a 32-byte digest, two sizes and
a stored name are kept until the end.

Files that cannot be used (not images, damaged, too large, uncaptioned) are skipped and listed;
an archive that cannot become a dataset at all raises `UnusableDataset` with the reason. Items
already passed to `on_items` before such a late failure (e.g. a second class whose images all
turned out broken) are the caller's to discard, as is the partly filled dataset_dir.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from jobs.ml.datasets import images
from jobs.ml.datasets.archive import ArchiveReader, Member, MemberError, list_members, open_archive
from jobs.ml.datasets.captions import (
    CaptionStats,
    CaptionTable,
    clean_caption,
    decode_text,
    parse_caption_table,
    parse_flickr_tokens,
    parse_split_file,
)
from jobs.ml.datasets.hashing import content_hash, item_digest
from jobs.ml.datasets.layout import class_of, enclosing_depth, find_caption_sources, match_key
from jobs.ml.datasets.model import (
    DEFAULT_LIMITS,
    KINDS,
    IngestLimits,
    IngestResult,
    Item,
    LooksLikeClassification,
    UnusableDataset,
)
from jobs.ml.datasets.splits import stratified_split
from jobs.ml.datasets.stats import ColourStats, ImageStats
from jobs.ml.datasets.storage import Storage

__all__ = [
    "IngestLimits", "IngestResult", "Item", "LooksLikeClassification", "UnusableDataset", "clean_caption",
    "ingest_archive", "stratified_split",
]

Progress = Callable[[float, str], None]
OnItems = Callable[[list[Item]], None]

# Members being decoded or waiting to be written, at most: per thread, and in bytes read.
IN_FLIGHT_PER_THREAD = 2
IN_FLIGHT_BYTES = 256 * 1024**2

# Share of the progress bar before and after the per-image work.
START, END = 0.02, 0.98

NO_CAPTION = "no caption for this image"
MISSING_IMAGE = "a caption names this image, but the archive does not contain it"
NOT_IN_CLASS = "not inside a class folder"


@dataclass
class Task:
    """One member to decode and store, with what the layout says about it."""

    member: Member
    parts: tuple[str, ...]  # the stored path before extension and clash fixes
    label: str = ""
    captions: list[str] = field(default_factory=list)
    split: str | None = None


@dataclass
class Plan:
    tasks: list[Task]
    skipped: list[dict]
    has_split_files: bool = False


def ingest_archive(archive: Path, dataset_dir: Path, kind: str, *, limits: IngestLimits = DEFAULT_LIMITS,
                   progress: Progress = lambda f, m: None,
                   on_items: OnItems = lambda items: None,
                   batch_size: int = 500) -> IngestResult:
    """Check, unpack and index one uploaded zip into dataset_dir/images and dataset_dir/thumbs.

    kind is "classification" (one folder per class) or "captions" (Flickr8k or captions.csv).
    `progress(fraction, sentence)` may raise (a cancel): it propagates after the threads stop.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    progress(0.0, "Checking the archive")
    with open_archive(Path(archive), limits) as zf:
        members = list_members(zf, limits)
        reader = ArchiveReader(zf, limits)
        if kind == "classification":
            plan = plan_classification(members)
        else:
            plan = plan_captions(members, reader)
        run = _Run(kind, reader, Storage(Path(dataset_dir)), limits, progress, on_items, batch_size)
        run.skipped.extend(plan.skipped)
        run.process(plan.tasks)
    return run.finish(plan, members)


def plan_classification(members: list[Member]) -> Plan:
    """Label every member by its class folder; fail early on fewer than two class folders."""
    depth = enclosing_depth(m.parts for m in members)
    tasks, skipped = [], []
    for m in members:
        found = class_of(m.parts, depth)
        if found is None:
            skipped.append({"path": m.name, "reason": NOT_IN_CLASS})
        else:
            tasks.append(Task(m, parts=found[1], label=found[0]))
    labels = sorted({t.label for t in tasks})
    if not labels:
        raise UnusableDataset("The archive has no class folders: put the images of each class in a folder "
                              "named after the class.")
    if len(labels) == 1:
        raise UnusableDataset(f"The archive has only one class folder ({labels[0]}); a classification dataset "
                              "needs at least two.")
    return Plan(tasks, skipped)


def _read_text(reader: ArchiveReader, member: Member) -> str:
    try:
        return decode_text(reader.read(member))
    except MemberError as exc:
        raise UnusableDataset(f"The captions file {member.name} could not be read: {exc}.") from exc


def _read_table(reader: ArchiveReader, member: Member, flickr: bool) -> CaptionTable:
    text = _read_text(reader, member)
    return parse_flickr_tokens(text, member.name) if flickr else parse_caption_table(text, member.name)


def plan_captions(members: list[Member], reader: ArchiveReader) -> Plan:
    """Match images to the captions (and Flickr8k split files); list what does not match.

    Members without a caption are looked at (first bytes only) so a readme is reported as not
    an image rather than as an image without a caption.
    """
    sources = find_caption_sources(members)
    source = sources.used
    if source is None:
        classes = _class_folders(members)
        if len(classes) >= 2:
            shown = ", ".join(classes[:5]) + (f" and {len(classes) - 5:,} more" if len(classes) > 5 else "")
            raise LooksLikeClassification(
                f"No captions file found, but the images sit in {len(classes):,} class folders ({shown}): this "
                "looks like a classification dataset. Read it as Classification, or add Flickr8k.token.txt or "
                "captions.csv (header image,caption) to caption it.", classes)
        raise UnusableDataset("No captions file found: add Flickr8k.token.txt, or captions.csv with the "
                              "header image,caption.")
    table = _read_table(reader, source, flickr=source is sources.tokens)
    if not table.captions:
        raise UnusableDataset(f"The captions file {source.name} holds no usable caption line.")
    split_of: dict[str, str] = {}
    for split, member in sources.splits.items():
        for name in parse_split_file(_read_text(reader, member)):
            split_of.setdefault(name, split)
    skipped = list(table.skipped)
    skipped += [{"path": m.name, "reason": f"not used: the captions come from {source.name}"}
                for m in sources.unused]
    tasks, matched, caption_files = [], set(), sources.members()
    for m in members:
        if m.name in caption_files:
            continue
        key = match_key(m.parts, table.captions)
        if key is None:
            skipped.append({"path": m.name, "reason": _uncaptioned_reason(reader, m)})
            continue
        matched.add(key)
        split_key = match_key(m.parts, split_of)
        tasks.append(Task(m, parts=m.parts, captions=table.captions[key],
                          split=split_of[split_key] if split_key else None))
    if not tasks:
        raise UnusableDataset(f"None of the {len(table.captions):,} images named in {source.name} is in the "
                              "archive.")
    skipped += [{"path": key, "reason": MISSING_IMAGE} for key in table.captions if key not in matched]
    return Plan(tasks, skipped, has_split_files=bool(split_of))


IMAGE_NAME_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")


def _class_folders(members: list[Member]) -> list[str]:
    """The class folders holding images when the archive is laid out for classification, by names alone."""
    pictures = [m for m in members if m.parts[-1].lower().endswith(IMAGE_NAME_SUFFIXES)]
    depth = enclosing_depth(m.parts for m in pictures)
    return sorted({found[0] for m in pictures if (found := class_of(m.parts, depth)) is not None})


def _uncaptioned_reason(reader: ArchiveReader, member: Member) -> str:
    try:
        head = reader.head(member)
    except MemberError as exc:
        return str(exc)
    return NO_CAPTION if images.is_image(head) else images.NOT_AN_IMAGE


class _Run:
    """The state of one ingestion while images flow through the pool: counts, never items."""

    def __init__(self, kind: str, reader: ArchiveReader, storage: Storage, limits: IngestLimits,
                 progress: Progress, on_items: OnItems, batch_size: int):
        self.kind, self.reader, self.storage, self.limits = kind, reader, storage, limits
        self.progress, self.on_items, self.batch_size = progress, on_items, batch_size
        self.skipped: list[dict] = []
        self.batch: list[Item] = []
        self.digests: list[bytes] = []
        self.labels: Counter[str] = Counter()
        self.image_stats = ImageStats()
        self.colour_stats = ColourStats()
        self.caption_stats = CaptionStats()
        self.num_items = self.num_captions = self.done = self.total = 0
        self.problem: dict | None = None  # the first image skipped for a reason other than not being one

    def process(self, tasks: list[Task]) -> None:
        """Read in order here, prepare on the pool, store in order; bounded in flight."""
        self.total = len(tasks)
        self.progress(START, f"Reading {self.total:,} files")
        limit = max(1, self.limits.threads) * IN_FLIGHT_PER_THREAD
        pending: deque[tuple[Task, Future, bytes]] = deque()
        pool = ThreadPoolExecutor(max_workers=max(1, self.limits.threads), thread_name_prefix="ingest")
        try:
            for task in tasks:
                try:
                    data = self.reader.read(task.member)
                except MemberError as exc:
                    self._skip(task.member.name, str(exc))
                    continue
                pending.append((task, pool.submit(images.prepare, data, self.limits), data))
                while len(pending) >= limit or (len(pending) > 1 and _bytes(pending) > IN_FLIGHT_BYTES):
                    self._finish(*pending.popleft())
            while pending:
                self._finish(*pending.popleft())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _finish(self, task: Task, future: Future, data: bytes) -> None:
        prepared = future.result()
        if isinstance(prepared, images.Rejected):
            self._skip(task.member.name, prepared.reason)
            return
        try:
            path, thumb = self.storage.store(task.parts, prepared.suffixes, prepared.stored or data,
                                             prepared.thumbnail)
        except MemberError as exc:
            self._skip(task.member.name, str(exc))
            return
        self._keep(task, prepared, path, thumb, len(prepared.stored or data))

    def _keep(self, task: Task, prepared: images.Prepared, path: str, thumb: str, stored_bytes: int) -> None:
        item = Item(path=path, original=task.member.name, label=task.label, split=task.split,
                    width=prepared.width, height=prepared.height, mode=prepared.mode, format=prepared.format,
                    checksum=prepared.checksum, thumbnail=thumb, captions=list(task.captions))
        self.digests.append(item_digest(item.label, item.checksum, item.captions))
        self.labels[item.label] += 1
        self.num_items += 1
        self.num_captions += len(item.captions)
        self.image_stats.add(item.width, item.height, item.mode, item.format, stored_bytes,
                             len(prepared.thumbnail))
        if self.kind == "captions":
            self.caption_stats.add(path, item.captions)
        else:
            self.colour_stats.add(item.label, prepared.colour)
        self.batch.append(item)
        if len(self.batch) >= self.batch_size:
            self._flush()
        self._tick()

    def _skip(self, path: str, reason: str) -> None:
        self.skipped.append({"path": path, "reason": reason})
        if self.problem is None and reason != images.NOT_AN_IMAGE:
            self.problem = self.skipped[-1]
        self._tick()

    def _tick(self) -> None:
        self.done += 1
        fraction = START + (END - START) * self.done / max(self.total, 1)
        self.progress(fraction, f"Reading images: {self.done:,} of {self.total:,}")

    def _flush(self) -> None:
        if self.batch:
            batch, self.batch = self.batch, []
            self.on_items(batch)

    def finish(self, plan: Plan, members: list[Member]) -> IngestResult:
        """Check that a dataset came out, deliver the last batch, and summarise."""
        self._check_outcome(len(members))
        self._flush()
        self.progress(END, "Computing statistics")
        stats = self.image_stats.summary()
        if self.kind == "captions":
            stats.update(self.caption_stats.summary())
        else:
            stats["colour"] = self.colour_stats.summary()
        classes = ([{"name": name, "count": n} for name, n in sorted(self.labels.items())]
                   if self.kind == "classification" else [])
        result = IngestResult(
            num_items=self.num_items, classes=classes, skipped=self.skipped,
            content_hash=content_hash(self.digests), num_captions=self.num_captions, stats=stats,
            has_split_files=plan.has_split_files,
        )
        what = f"{len(classes)} classes" if classes else f"{self.num_captions:,} captions"
        self.progress(1.0, f"Dataset ready: {self.num_items:,} images, {what}")
        return result

    def _check_outcome(self, num_files: int) -> None:
        if self.num_items == 0:
            if self.problem is None:
                raise UnusableDataset(f"No images found: the archive holds {num_files:,} files, none of them "
                                      "an image Pillow can read.")
            raise UnusableDataset(f"No usable images: every image in the archive was skipped (the first, "
                                  f"{self.problem['path']}: {self.problem['reason']}).")
        if self.kind == "classification" and len(self.labels) < 2:
            (name,) = self.labels
            raise UnusableDataset(f"The archive has only one class with usable images ({name}); a "
                                  "classification dataset needs at least two.")


def _bytes(pending: deque[tuple[Task, Future, bytes]]) -> int:
    return sum(len(entry[2]) for entry in pending)

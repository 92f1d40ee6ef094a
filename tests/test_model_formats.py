"""A model file format is one class in `jobs.ml.formats`, and the registry is the only place that knows formats.

Three things are shown here:
- the registry tells the real files apart by their bytes (the published quantized MobileNet, its float twin
  saved as .keras and .h5 and converted to .tflite, a .tflite carrying TFLite metadata and a label zip), and
  refuses a file whose bytes are not what its suffix says, with the sentence a person reads;
- a toy format written in this file (a NumPy `.npy` array that is a linear feature extractor) and
  registered with one line is picked up, with no other edit, by everything that asks "which format is
  this / can it be fine-tuned / can a model on it be exported": the registry, `Backbone.format`'s choices,
  the upload's checks, inspection, extraction, the sanity check, a transfer model trained on it, its
  predictions, and the refusals to fine-tune, export or reuse it;
- no production code, template or script compares format names itself any more.
"""

from __future__ import annotations

import io
import json
import re
import tokenize
from pathlib import Path

import numpy as np
import pytest

from jobs.ml import formats
from jobs.ml.signatures import HEAD_BYTES
from tests.real_models import QUANT_TFLITE

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
              pytest.mark.filterwarnings("ignore::UserWarning")]


def head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(HEAD_BYTES)


# --- (a) the real files, by their bytes --------------------------------------------------------------


@pytest.fixture(scope="module")
def real_files(tmp_path_factory) -> dict[str, Path]:
    """name -> a real model file of that kind: the published .tflite, and the float twin as .keras, .h5, .tflite."""
    from tests.real_models import float_tflite, save_float_keras
    from tests.tflite_files import with_metadata

    folder = tmp_path_factory.mktemp("real")
    described = folder / "described.tflite"  # TFLite metadata inside, a label file zipped onto the end
    described.write_bytes(with_metadata(QUANT_TFLITE.read_bytes(), mean=[127.5], std=[127.5], labels=["a", "b"]))
    return {"quantized.tflite": QUANT_TFLITE, "described.tflite": described,
            "float.keras": save_float_keras(folder, fmt="keras"), "float.h5": save_float_keras(folder, fmt="h5"),
            "float.tflite": float_tflite(folder)}


@pytest.mark.parametrize(("key", "name"), [("quantized.tflite", "tflite"), ("described.tflite", "tflite"),
                                           ("float.keras", "keras"), ("float.h5", "h5"), ("float.tflite", "tflite")])
def test_the_registry_knows_each_real_file_by_its_bytes_and_its_name(real_files, key, name):
    path = real_files[key]
    assert formats.identify(head(path)).name == name  # content alone, whatever the file is called
    assert formats.by_filename(path.name.upper()).name == name
    assert formats.of_file(path) is formats.by_name(name)
    assert formats.problem(path.name, head(path)) is None


@pytest.mark.parametrize(("source", "renamed", "words"), [
    ("quantized.tflite", "model.keras", "a .keras file is a zip archive, and this one is a TensorFlow Lite model"),
    ("float.keras", "model.h5", "an .h5 file is an HDF5 file, and this one is a zip archive"),
    ("float.h5", "model.tflite", "could not be opened as a TensorFlow Lite model: it is an HDF5 file"),
    ("float.tflite", "model.h5", "an .h5 file is an HDF5 file, and this one is a TensorFlow Lite model"),
])
def test_a_file_whose_bytes_are_not_what_its_suffix_says_is_refused_with_the_real_reason(
        real_files, tmp_path, source, renamed, words):
    path = tmp_path / renamed
    path.write_bytes(real_files[source].read_bytes())
    with pytest.raises(ValueError) as caught:
        formats.of_file(path)
    assert str(caught.value).startswith(renamed) and words in str(caught.value), caught.value
    assert formats.problem(renamed, head(path)) == str(caught.value)
    assert formats.identify(head(path)).name == source.rsplit(".", 1)[1]  # what it really is


def test_names_with_no_format_and_empty_files_are_refused(tmp_path):
    assert formats.by_filename("model.onnx") is None and formats.by_filename("keras") is None
    with pytest.raises(ValueError, match=r"is a \.keras, \.h5 or \.tflite file; model\.onnx is none of these"):
        formats.of_file(tmp_path / "model.onnx")
    (tmp_path / "empty.h5").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.h5 is empty: upload the model file itself"):
        formats.of_file(tmp_path / "empty.h5")
    with pytest.raises(ValueError, match="no model format called 'onnx'"):
        formats.by_name("onnx")
    with pytest.raises(ValueError, match="A backbone is a Keras or TensorFlow Lite model, not 'onnx'"):
        formats.by_kind("onnx")


def test_what_each_format_allows():
    keras, h5, tflite = (formats.by_name(name) for name in ("keras", "h5", "tflite"))
    assert [f.name for f in formats.FORMATS.values()] == ["keras", "h5", "tflite"]
    assert (keras.kind, h5.kind, tflite.kind) == ("keras", "keras", "tflite")  # both Keras files run as Keras
    assert formats.by_kind("keras") is keras and formats.of_backbone(None) is keras  # no backbone: a Keras model
    assert keras.fine_tunes and h5.fine_tunes and not tflite.fine_tunes
    assert keras.exportable and h5.exportable and not tflite.exportable


# --- (b) a toy format, registered here with one line -----------------------------------------------------


class NpyFormat(formats.ModelFormat):
    """A linear feature extractor kept as one NumPy array of shape (side, side, channels, features):
    features = the scaled pixels contracted with it. Frozen, and not a Keras graph."""

    name, label, title = "npy", "NumPy linear map (.npy)", "NumPy"
    suffixes, kind = (".npy",), "npy"

    def accepts(self, head: bytes) -> bool:
        return head.startswith(b"\x93NUMPY")

    def inspect(self, path, output, input_size):
        weights = np.load(path, allow_pickle=False)
        if weights.ndim != 4 or weights.shape[0] != weights.shape[1] or weights.shape[2] not in (1, 3):
            raise ValueError(f"{path.name} is not a (side, side, channels, features) array.")
        side, _, channels, width = weights.shape
        return "linear", side, channels, (width,)

    def extractor(self, backbone, precision):
        weights = np.load(backbone.source, allow_pickle=False).astype(np.float32)
        return lambda pixels: np.einsum("nhwc,hwcd->nd", backbone.scaling.apply(pixels), weights)


SIDE = 16


def block_means(side: int = SIDE, blocks: int = 2) -> np.ndarray:
    """Weights giving each colour channel's mean over each of blocks x blocks squares, 0..1."""
    step = side // blocks
    weights = np.zeros((side, side, 3, blocks * blocks * 3), np.float32)
    for by in range(blocks):
        for bx in range(blocks):
            for channel in range(3):
                weights[by * step:(by + 1) * step, bx * step:(bx + 1) * step, channel,
                        (by * blocks + bx) * 3 + channel] = 1.0 / (step * step * 255.0)
    return weights


@pytest.fixture
def npy_format():
    formats.register(NpyFormat)
    yield formats.by_name("npy")
    formats.unregister("npy")


@pytest.fixture
def npy_file(tmp_path) -> Path:
    path = tmp_path / "blocks.npy"
    np.save(path, block_means())
    return path


def test_a_registered_format_is_known_to_the_registry_and_the_database(npy_format, npy_file):
    from django.core.exceptions import ValidationError

    from webapp.experiments.models import Backbone

    assert formats.identify(head(npy_file)) is npy_format and formats.by_filename("W.NPY") is npy_format
    assert formats.of_file(npy_file) is npy_format and formats.by_kind("npy") is npy_format
    assert formats.suffix_list() == ".keras, .h5, .tflite or .npy"
    refusal = formats.problem("w.npy", b"PK\x03\x04rest")
    assert refusal == "w.npy could not be opened as a NumPy model: it is a zip archive."
    assert {"name": "npy", "title": "NumPy", "suffixes": [".npy"], "fine_tunes": False,
            "exportable": False} in formats.catalogue()

    field = Backbone._meta.get_field("format")
    assert ("npy", "NumPy linear map (.npy)") in list(field.choices)
    field.clean("npy", None)  # a valid value now, with no edit to the model
    with pytest.raises(ValidationError):
        field.clean("onnx", None)
    assert Backbone(id=3, format="npy").file_path.name == "backbone.npy" and Backbone(format="npy").kind == "npy"


def test_the_upload_form_and_its_page_take_the_new_format(npy_format, npy_file):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from webapp.experiments.backbones_api import BackboneUploadSerializer
    from webapp.experiments.model_pages import _model_formats

    good = BackboneUploadSerializer(data={"file": SimpleUploadedFile("blocks.npy", npy_file.read_bytes())},
                                    context={"request": None})
    assert good.is_valid(), good.errors
    zipped = BackboneUploadSerializer(data={"file": SimpleUploadedFile("blocks.npy", b"PK\x03\x04" + b"\0" * 60)},
                                      context={"request": None})
    assert not zipped.is_valid()
    assert zipped.errors["file"] == ["blocks.npy could not be opened as a NumPy model: it is a zip archive."]
    other = BackboneUploadSerializer(data={"file": SimpleUploadedFile("blocks.onnx", b"x")}, context={"request": None})
    assert not other.is_valid() and other.errors["file"] == ["A backbone is a .keras, .h5, .tflite or .npy file."]

    page = _model_formats()  # what the features page's upload form is built from
    assert page["accept"] == ".keras,.h5,.tflite,.npy" and page["suffix_list"] == ".keras, .h5, .tflite or .npy"


def test_a_registered_format_is_inspected_run_and_checked_like_the_others(npy_format, npy_file):
    from jobs.ml import sanity
    from jobs.ml.backbones import inspect_file, load_extractor, suggest_scaling
    from jobs.ml.scaling import RAW

    backbone = inspect_file(npy_file, name="backbones/9")
    assert (backbone.kind, backbone.layer, backbone.image_size, backbone.channels, backbone.feature_shape) == (
        "npy", "linear", SIDE, 3, (12,))
    assert backbone.scaling == RAW and suggest_scaling(npy_file)[1] == "the default (the file does not say)"
    red = np.zeros((1, SIDE, SIDE, 3), np.float32)
    red[..., 0] = 255.0
    features = load_extractor(backbone)(red)
    assert features.shape == (1, 12) and np.allclose(features[0, 0::3], 1.0) and np.allclose(features[0, 1::3], 0)

    report = sanity.check(backbone)  # every candidate scaling, through the format's own runner
    assert report["classifier"] is False and report["spread"] > 0 and len(report["alternatives"]) > 1


@pytest.mark.django_db
def test_an_uploaded_backbone_of_the_new_format_is_offered_but_not_for_fine_tuning(npy_format, npy_file, alice,
                                                                                   settings, tmp_path):
    from jobs.features import backbone_for
    from webapp.experiments import backbone_choices
    from webapp.experiments.models import Backbone

    settings.DATA_DIR = tmp_path
    row = Backbone.objects.create(owner=alice, name="blocks", format="npy", filename="blocks.npy", output="linear",
                                  input_size=SIDE, channels=3, output_dim=12, feature_shape=[12], sha256="0" * 64)
    row.directory.mkdir(parents=True)
    row.file_path.write_bytes(npy_file.read_bytes())

    choice = backbone_choices.resolve(row.key, alice)
    assert (choice.fine_tunes, choice.image_size, choice.channels) == (False, SIDE, 3)
    assert backbone_choices.resolve("vgg16", alice).fine_tunes  # built-ins are Keras models
    backbone = backbone_for(alice, row.key)
    assert (backbone.kind, backbone.source) == ("npy", str(row.file_path))


def test_a_transfer_model_on_the_new_format_trains_predicts_and_is_refused_where_it_cannot_go(
        npy_format, npy_file, tmp_path):
    from jobs.ml.backbones import from_trained_model, inspect_file
    from jobs.ml.export import ExportRefused, _check_exportable
    from jobs.ml.features import FeatureStore
    from jobs.ml.predict import FeaturePipeline, load_classifier, predict_image
    from jobs.ml.transfer import TransferConfig, train_transfer
    from tests.sinks import RecordingSink
    from tests.test_features_ml import COLOURS, make_images
    from webapp.experiments.models import TrainedModel
    from webapp.experiments.views import export_card

    backbone = inspect_file(npy_file, name="backbones/9")
    items = make_images(tmp_path / "colours", per_class=8, size=SIDE, seed=1)
    train, val = [i for n, i in enumerate(items) if n % 4], [i for n, i in enumerate(items) if not n % 4]
    features, _ = FeatureStore(tmp_path / "features").ensure("colours", [(p, p) for p, _ in items], backbone,
                                                             RecordingSink(), batch_size=8, precision="auto")
    assert features.meta["precision"] == "float32"  # not a Keras model: no mixed precision

    with pytest.raises(ValueError, match="Fine-tuning needs a Keras backbone; backbones/9 is a NumPy model"):
        train_transfer(train, val, val, list(COLOURS), backbone, features, TransferConfig(mode="finetune"),
                       tmp_path / "finetune", RecordingSink(), feature_key=str)
    workdir = tmp_path / "model"
    train_transfer(train, val, val, list(COLOURS), backbone, features, TransferConfig(epochs=3), workdir,
                   RecordingSink(), feature_key=str)
    model, metadata = load_classifier(workdir)
    assert isinstance(model, FeaturePipeline) and metadata["backbone"]["kind"] == "npy"
    top = predict_image(model, metadata, Path(val[0][0]).read_bytes(), top=3)
    assert {p["label"] for p in top} == set(COLOURS) and sum(p["probability"] for p in top) == pytest.approx(1, 1e-4)

    with pytest.raises(ValueError, match="runs on an uploaded NumPy backbone, so it cannot serve as a backbone"):
        from_trained_model(workdir, "models/4")
    with pytest.raises(ExportRefused, match=r"its backbone is a NumPy file.*the backbone's \.npy file"):
        _check_exportable(workdir, json.loads((workdir / "metadata.json").read_text()))
    page_model = TrainedModel(task=TrainedModel.Task.CLASSIFY, backbone=metadata["backbone"])
    assert not page_model.exportable
    assert export_card(page_model)["refused"].startswith("This model reads its features from a NumPy backbone")


# --- (c) nobody else compares format names ------------------------------------------------------------------

FORMAT_WORDS = {"keras", "h5", "tflite", ".keras", ".h5", ".tflite"}
FORMAT_NAMES = {"keras", "h5", "tflite"}
COMPARISONS = {"==", "!=", "in", "case"}
# Pages: a format name compared, a format-named flag or attribute, a list or pattern of suffixes.
PAGE_PATTERNS = [re.compile(p) for p in (
    r"""[=!]==?\s*["'`]\.?(keras|h5|tflite)["'`]""", r"""["'`]\.?(keras|h5|tflite)["'`]\s*[=!]==?""",
    r"""\bcase\s+["'`]\.?(keras|h5|tflite)["'`]""", r"""\bdata-(keras|h5|tflite)\b""",
    r"""\bdataset\.(keras|h5|tflite)\b""", r"""\b\w+\.(keras|h5|tflite)\s*(\||\}\}|%\}|\)|&&|\|\||\?)""",
    r"""(keras|h5|tflite)\|(keras|h5|tflite)""", r"""["'`]\.(keras|h5|tflite)["'`]\s*[,\]]""",
    r"""accept="[^"]*\.(keras|h5|tflite)""", r"""[{,]\s*(keras|h5|tflite)\s*:\s*["'`]""",
)]


def _python_comparisons(source: str) -> list[str]:
    """Format names compared (`== "tflite"`, `in ("keras", "h5")`, `case "h5"`) or read as attributes
    (`choice.keras`, `Format.TFLITE`, `TFLITE_SUFFIX`), found in the tokens so prose and strings do not count."""
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
              if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT)]
    found, openers = [], []
    for i, token in enumerate(tokens):
        before = tokens[i - 1].string if i else ""
        after = tokens[i + 1].string if i + 1 < len(tokens) else ""
        if token.string in "([{":
            openers.append(before)
        elif token.string in ")]}" and openers:
            openers.pop()
        if token.type == tokenize.STRING and token.string.strip("\"'") in FORMAT_WORDS and (
                before in COMPARISONS or after in COMPARISONS or (openers and openers[-1] in COMPARISONS)):
            found.append(f"line {token.start[0]}: {token.line.strip()}")
        if token.type == tokenize.NAME and (
                (before == "." and token.string.lower() in FORMAT_NAMES and tokens[i - 2].string not in ("import",))
                or re.fullmatch(r"(KERAS|TFLITE|H5)_SUFFIX(ES)?", token.string)):
            found.append(f"line {token.start[0]}: {token.line.strip()}")
    return found


def _page_comparisons(text: str) -> list[str]:
    return [f"line {n}: {line.strip()[:160]}" for n, line in enumerate(text.splitlines(), 1)
            if any(p.search(line) for p in PAGE_PATTERNS)]


def test_the_checks_below_catch_what_they_look_for():
    assert len(_python_comparisons('if backbone.kind == "tflite" or kind != "keras":\n    pass\n')) == 2
    assert _python_comparisons('x = suffix in (".keras", ".h5")\nok = choice.keras\nB.Format.TFLITE\n')
    assert _python_comparisons('y = TFLITE_SUFFIX\nmatch f:\n    case "h5":\n        pass\n')
    assert not _python_comparisons('path = d / "model.keras"\nsay = "a .keras file"\nimport keras\n'
                                   'EXPORTS = {"tflite": 1}\nkeras.layers.Dense(1)\n')
    for bad in ('if (b.format === "tflite") {', 'option.dataset.keras === "1"', '{% if backbone.tflite %}',
                '<option data-keras="{{ b.keras|yesno:\'1,0\' }}">', 'name.replace(/\\.(keras|h5|tflite)$/i, "")',
                'const SUFFIXES = [".keras", ".h5", ".tflite"];', '<input accept=".keras,.h5">',
                'const FORMATS = { keras: "Keras", h5: "Keras HDF5" };'):
        assert _page_comparisons(bad), bad
    for fine in ('<p>Download .keras</p>', '["Keras", result.keras], ["NumPy", result.numpy]]);',
                 'keras.saving.load_model("model.keras")', 'a TensorFlow Lite file (<code>.tflite</code>, quantized)'):
        assert not _page_comparisons(fine), fine


def _production_files(folders: tuple[str, ...], suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*") if p.suffix in suffixes
                  and "vendor" not in p.parts and "migrations" not in p.parts and p != ROOT / "jobs/ml/formats.py")


def test_no_production_code_template_or_script_compares_format_names():
    found = {}
    for path in _production_files(("jobs", "webapp"), (".py",)):
        found.update({f"{path.relative_to(ROOT)} {hit}": 1 for hit in _python_comparisons(path.read_text())})
    for path in _production_files(("templates", "static/js"), (".html", ".js")):
        found.update({f"{path.relative_to(ROOT)} {hit}": 1 for hit in _page_comparisons(path.read_text())})
    assert not found, ("format names compared outside jobs/ml/formats.py (ask the registry, or read a "
                       "capability flag):\n" + "\n".join(found))

"""The export formats as plain tables: names and files, tolerances, the copy-paste snippets for the model page.

Kept apart from jobs.ml.export, which converts and checks models with TensorFlow, so the web pages and the
job kind read the catalogue without loading any of that (one home for each format's facts).
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.ml.artifacts import EMBEDDED_METADATA

# name -> (title for pages, the file written into out_dir)
FORMATS: dict[str, tuple[str, str]] = {
    "savedmodel": ("TensorFlow SavedModel (zip)", "model_savedmodel.zip"),
    "tflite": ("TensorFlow Lite, float32", "model.tflite"),
    "tflite_float16": ("TensorFlow Lite, float16 weights", "model_float16.tflite"),
    "tflite_int8": ("TensorFlow Lite, full integer (uint8 in and out)", "model_int8.tflite"),
    "onnx": ("ONNX", "model.onnx"),
}
TFLITE_FORMATS = ("tflite", "tflite_float16", "tflite_int8")

INPUT_NAME, OUTPUT_NAME = "pixels", "probabilities"  # every format's input and output names
SAVED_MODEL_DIR = "saved_model"  # the folder inside the SavedModel zip


class ExportRefused(ValueError):
    """The model cannot be exported to the format asked for; str() is a sentence for the user."""


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ExportRefused(f"There is no export format called {fmt!r}; choose one of {', '.join(FORMATS)}.")
    return fmt


# --- tolerances --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tolerance:
    """How far an export may drift from the original on the test images before it is flagged."""

    min_agreement: float  # fraction of images with the same top-1 class as the original
    max_accuracy_drop: float  # test accuracy points (as a fraction) lost against the original
    max_prob_diff: float | None  # largest absolute difference in any class probability; None: not checked


# Float32 formats compute what Keras computes up to summation order: anything beyond round-off is a
# bug. float16 weights move probabilities by about 1e-3 on the zoo's models; 0.02 leaves room for
# deep models while still catching a wrong input range. int8 moves probabilities by a few 1/256
# steps and flips the odd borderline image: 95% agreement and at most 3 points of accuracy lost is
# what post-training quantization is expected to keep; below it, quantization-aware training or a
# float format is the answer. On a small test set one image is a large fraction: read with care.
FLOAT_TOLERANCE = Tolerance(min_agreement=0.99, max_accuracy_drop=0.01, max_prob_diff=1e-3)
TOLERANCES: dict[str, Tolerance] = {
    "savedmodel": FLOAT_TOLERANCE, "tflite": FLOAT_TOLERANCE, "onnx": FLOAT_TOLERANCE,
    "tflite_float16": Tolerance(min_agreement=0.99, max_accuracy_drop=0.01, max_prob_diff=0.02),
    "tflite_int8": Tolerance(min_agreement=0.95, max_accuracy_drop=0.03, max_prob_diff=None),
}


def within_tolerance(fmt: str, figures: dict) -> str | None:
    """A sentence saying how the export (figures from `verify_export`) drifted too far, or None when it did not."""
    tolerance = TOLERANCES[check_format(fmt)]
    title, images = FORMATS[fmt][0], figures["images"]
    problems = []
    if figures["agreement"] < tolerance.min_agreement:
        problems.append(f"it gives the original's top class on only {figures['agreement']:.1%} of the {images} "
                        f"test images (at least {tolerance.min_agreement:.0%} is expected)")
    drop = -figures["accuracy_change"]
    if drop > tolerance.max_accuracy_drop:
        problems.append(f"its test accuracy is {drop * 100:.1f} points lower (at most "
                        f"{tolerance.max_accuracy_drop * 100:g} is expected)")
    if tolerance.max_prob_diff is not None and figures["max_prob_diff"] > tolerance.max_prob_diff:
        problems.append(f"its probabilities differ from the original's by up to {figures['max_prob_diff']:.3g} "
                        f"(at most {tolerance.max_prob_diff:g} is expected)")
    if not problems:
        return None
    return f"The {title} export drifted from the original model: {'; '.join(problems)}."


# --- copy-paste code for the model page --------------------------------------------------------------

_LOAD_IMAGE = '''\
image = Image.open("photo.jpg").convert("L" if channels == 1 else "RGB")
image = image.resize((size, size), Image.Resampling.BILINEAR)'''

_TFLITE = '''\
import numpy as np
from PIL import Image

try:
    from ai_edge_litert.interpreter import Interpreter  # pip install ai-edge-litert
except ImportError:
    import tensorflow as tf
    Interpreter = tf.lite.Interpreter

interpreter = Interpreter(model_path="{file}")
interpreter.allocate_tensors()
inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
_, size, _, channels = inp["shape"]
{load}
pixels = np.asarray(image, np.{dtype}).reshape(1, size, size, channels)  # raw 0..255: no scaling
interpreter.set_tensor(inp["index"], pixels)
interpreter.invoke()
{output}
top = int(probabilities.argmax())  # an index into the class names, in the model's order
print(top, float(probabilities[top]))
'''

SNIPPETS: dict[str, str] = {
    "savedmodel": f'''\
import json
import zipfile

import numpy as np
import tensorflow as tf
from PIL import Image

with zipfile.ZipFile("{FORMATS["savedmodel"][1]}") as archive:
    archive.extractall("exported")
class_names = json.loads(open("exported/{EMBEDDED_METADATA}").read())["class_names"]
predict = tf.saved_model.load("exported/{SAVED_MODEL_DIR}").signatures["serving_default"]
_, size, _, channels = predict.structured_input_signature[1]["{INPUT_NAME}"].shape
{_LOAD_IMAGE}
pixels = np.asarray(image, np.float32).reshape(1, size, size, channels)  # raw 0..255: no scaling
probabilities = predict({INPUT_NAME}=tf.constant(pixels))["{OUTPUT_NAME}"].numpy()[0]
top = int(probabilities.argmax())
print(class_names[top], float(probabilities[top]))
''',
    "tflite": _TFLITE.format(file=FORMATS["tflite"][1], load=_LOAD_IMAGE, dtype="float32",
                             output='probabilities = interpreter.get_tensor(out["index"])[0]'),
    "tflite_float16": _TFLITE.format(file=FORMATS["tflite_float16"][1], load=_LOAD_IMAGE, dtype="float32",
                                     output='probabilities = interpreter.get_tensor(out["index"])[0]'),
    "tflite_int8": _TFLITE.format(
        file=FORMATS["tflite_int8"][1], load=_LOAD_IMAGE, dtype="uint8",
        output='scale, zero = out["quantization"]  # 1/256 and 0: probability = value / 256\n'
               'probabilities = (interpreter.get_tensor(out["index"])[0].astype(np.float32) - zero) * scale'),
    "onnx": f'''\
import json

import numpy as np
import onnxruntime as ort
from PIL import Image

session = ort.InferenceSession("{FORMATS["onnx"][1]}", providers=["CPUExecutionProvider"])
class_names = json.loads(session.get_modelmeta().custom_metadata_map["class_names"])
_, size, _, channels = session.get_inputs()[0].shape
{_LOAD_IMAGE}
pixels = np.asarray(image, np.float32).reshape(1, size, size, channels)  # raw 0..255, NHWC: no scaling
probabilities = session.run(["{OUTPUT_NAME}"], {{"{INPUT_NAME}": pixels}})[0][0]
top = int(probabilities.argmax())
print(class_names[top], float(probabilities[top]))
''',
}

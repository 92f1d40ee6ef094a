"""The TensorFlow/Keras core of VisionLab.

Nothing here imports Django, Celery or Redis: every function takes plain values and reports
through a `ProgressSink`, so the same code runs from a worker, a test or a plain script.
"""

import os

# TensorFlow prints pages of C++ start-up notes at INFO level; keep warnings and errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

"""The queues VisionLab's workers listen on, and why each exists.

Kept free of Django and Celery imports so the web side, the workers and the tests agree on
the names without importing each other.
"""

from enum import StrEnum


class Queue(StrEnum):
    # Work any machine can do: ingestion, system checks, training on the CPU.
    CPU = "cpu"
    # Training and feature extraction that want a GPU; GPU workers run one job at a time.
    GPU = "gpu"
    # Predictions and captions that must answer in well under a second even while every
    # training worker is busy: served by its own worker process that keeps models loaded.
    INFERENCE = "inference"


# What `make run`'s one job worker listens on.
JOB_QUEUES = (Queue.CPU, Queue.GPU)

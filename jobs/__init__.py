"""Background work: the Celery application (`celery.py`), thin tasks (`tasks.py`) and the
Django-free ML core (`ml/`)."""

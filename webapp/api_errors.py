"""The API's answer when a service it needs is down, written once for every endpoint.

Launching a job, importing a dataset, starting a sweep or asking the inference worker raise
QueueUnavailable (Redis cannot be reached) or InferenceUnavailable (no inference worker answered)
from deep inside the services. Views let them rise; DRF calls `exception_handler` (settings:
REST_FRAMEWORK["EXCEPTION_HANDLER"]), which answers 503 {"detail": the exception's sentence}, the
shape every other refusal has, instead of each view catching and converting them by hand.
"""

from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.views import exception_handler as drf_exception_handler

from webapp.jobs.inference import InferenceUnavailable
from webapp.jobs.launch import QueueUnavailable


class QueueUnavailableError(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "queue_unavailable"


class InferenceUnavailableError(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "inference_unavailable"


# DRF imports this module by its dotted name (settings) once the apps are loaded, so the services' exceptions
# are plain imports.
ANSWERS = ((QueueUnavailable, QueueUnavailableError), (InferenceUnavailable, InferenceUnavailableError))


def exception_handler(exc, context):
    """DRF's handler, after turning a service outage into its 503 APIException (same detail sentence)."""
    for raised, answer in ANSWERS:
        if isinstance(exc, raised):
            exc = answer(str(exc))
            break
    return drf_exception_handler(exc, context)

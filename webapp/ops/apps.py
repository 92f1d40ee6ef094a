from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Running the stack: health, workers, the `runstack` and `bootstrap` commands."""

    name = "webapp.ops"
    verbose_name = "Operations"

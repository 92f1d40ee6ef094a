from django.apps import AppConfig


class DemosConfig(AppConfig):
    name = "webapp.demos"
    verbose_name = "Shared demos"

    def ready(self):
        from webapp.demos import schema  # noqa: F401 - registers the demo endpoint's OpenAPI description

from django.apps import AppConfig


class DemosConfig(AppConfig):
    name = "webapp.demos"
    verbose_name = "Shared demos"

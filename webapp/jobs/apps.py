from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "webapp.jobs"
    label = "job_platform"  # "jobs" is the worker package's name; the label keeps the two apart in logs
    verbose_name = "Job platform"

    def ready(self) -> None:
        from webapp.jobs import registry  # registers the kinds once the models they validate against exist

        registry.load()

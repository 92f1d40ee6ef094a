from django.apps import AppConfig


class SweepsConfig(AppConfig):
    name = "webapp.sweeps"
    verbose_name = "Sweeps"

    def ready(self) -> None:
        from webapp.experiments.deletion import model_delete_requested  # models: importable once apps are loaded
        from webapp.jobs.signals import job_ended  # models: importable once apps are loaded
        from webapp.sweeps.engine import trial_ended  # models: importable once apps are loaded
        from webapp.sweeps.models import refusal_to_delete  # models: importable once apps are loaded

        # A trial's job ended (its worker, a cancel, a lost worker): the sweep moves on.
        job_ended.connect(lambda sender, job, **kwargs: trial_ended(job), weak=False,
                          dispatch_uid="sweeps.trial_ended")
        # A model a running sweep's trials read as their backbone cannot be deleted.
        model_delete_requested.connect(lambda sender, model, **kwargs: refusal_to_delete(model), weak=False,
                                       dispatch_uid="sweeps.refusal_to_delete")

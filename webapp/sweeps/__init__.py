"""Hyperparameter sweeps: a search over declared parameters whose trials are ordinary jobs.

models (the Sweep record), space (the search space checked against webapp.experiments.params),
studies (the Optuna study in the project's own database), engine (asks Optuna for trials and
launches them as jobs, tells it how each ended), estimate (the time a sweep will take), api and
views (the REST endpoints and the pages).
"""

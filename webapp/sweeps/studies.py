"""The Optuna study behind a sweep, kept in the project's own database.

Optuna's tables (`studies`, `trials`, ...) live beside Django's in the same database: the SQLite
file under DATA_DIR here, PostgreSQL at scale, so every web process and worker on every host
shares one study and nothing else needs backing up. Samplers and pruners are not stored by
Optuna; they are rebuilt from the Sweep row on every load, the sampler's seed moved on by the
number of trials so far, so that two processes never draw the same "random" trial (a grid's seed
stays fixed: it orders the grid once for everyone).

Optuna writes through its own (SQLAlchemy) connections: never call it inside a Django atomic
block on SQLite, whose single writer would then wait on itself.
"""

from __future__ import annotations

import os
import threading

import optuna
from django.db import connection

from webapp.sweeps.space import grid_values

optuna.logging.set_verbosity(optuna.logging.WARNING)

_storages: dict[tuple[int, str], optuna.storages.RDBStorage] = {}
_lock = threading.Lock()


def database_url() -> str:
    """SQLAlchemy's URL for the database Django uses now (the test database under pytest)."""
    settings = connection.settings_dict
    engine = settings["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings['NAME']}"
    if "postgresql" in engine:
        from sqlalchemy.engine import URL

        return URL.create("postgresql+psycopg", username=settings.get("USER") or None,
                          password=settings.get("PASSWORD") or None, host=settings.get("HOST") or None,
                          port=int(settings["PORT"]) if settings.get("PORT") else None,
                          database=settings["NAME"]).render_as_string(hide_password=False)
    raise RuntimeError(f"Sweeps keep their studies in SQLite or PostgreSQL, not {engine}.")


def storage() -> optuna.storages.RDBStorage:
    """This process's storage (one engine per process: a forked worker must not share its parent's)."""
    url = database_url()
    key = (os.getpid(), url)
    with _lock:
        if key not in _storages:
            kwargs = {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {"pool_pre_ping": True}
            _storages[key] = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        return _storages[key]


def sampler(sweep, trials_so_far: int) -> optuna.samplers.BaseSampler:
    if sweep.method == "grid":  # its seed orders the whole grid: the same in every process, or points repeat
        return optuna.samplers.GridSampler(grid_values(sweep.space), seed=sweep.seed)
    seed = sweep.seed + trials_so_far
    if sweep.method == "tpe":
        # A third of the trials (3 to 10) at random first: TPE needs a few results to model.
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(3, min(10, sweep.trials // 3)))
    return optuna.samplers.RandomSampler(seed=seed)


def pruner(sweep) -> optuna.pruners.BasePruner:
    if sweep.pruning == "median":
        # Judge a trial only once two others have finished, and never on its first epoch.
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2)  # steps are epochs from 1
    if sweep.pruning == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(sweep.epochs, 1), reduction_factor=3)
    return optuna.pruners.NopPruner()


def direction(sweep) -> str:
    return "maximize" if sweep.direction == "max" else "minimize"


def create(sweep) -> None:
    optuna.create_study(study_name=sweep.study_name, storage=storage(), direction=direction(sweep),
                        load_if_exists=True)


def load(sweep, trials_so_far: int = 0) -> optuna.Study:
    return optuna.load_study(study_name=sweep.study_name, storage=storage(),
                             sampler=sampler(sweep, trials_so_far), pruner=pruner(sweep))


def delete(sweep) -> None:
    try:
        optuna.delete_study(study_name=sweep.study_name, storage=storage())
    except KeyError:
        pass


def trial(study: optuna.Study, number: int) -> optuna.Trial:
    """The live trial `number` of `study`, to report to and ask whether to prune."""
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    return optuna.Trial(study, trial_id)

"""The web process never imports TensorFlow (PRODUCT.md, Architecture), and the build enforces it.

A fresh interpreter configures Django, imports every `webapp` module (views, APIs, admin,
management commands, migrations) and then every module that `webapp` code imports anywhere,
also inside functions (what a request may load later). TensorFlow, Keras and scikit-learn must
not be among the loaded modules, and from the ML core the web modules themselves load only the
plain catalogues: the modules that hold the heavy code (the zoo, the backbones, dataset makers)
are where a top-level `import keras` could one day appear.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("tensorflow", "keras", "sklearn")
# What importing the web's modules may load from jobs.ml: catalogues with no heavy code behind them.
LIGHT_ML_MODULES = {"jobs.ml", "jobs.ml.artifacts", "jobs.ml.catalog", "jobs.ml.config", "jobs.ml.export_formats",
                    "jobs.ml.formats", "jobs.ml.predictions", "jobs.ml.progress", "jobs.ml.scaling",
                    "jobs.ml.signatures"}

PROBE = r"""
import ast, importlib, json, os, pathlib, pkgutil, sys
import django
django.setup()
import webapp

def loaded(prefixes):
    return sorted(m for m in sys.modules if m.split(".")[0] in prefixes)

for info in pkgutil.walk_packages(webapp.__path__, "webapp."):
    importlib.import_module(info.name)
# The URL map and the WSGI application, as gunicorn loads them.
import webapp.urls, webapp.wsgi  # noqa: E401
at_import = {"forbidden": loaded(FORBIDDEN), "ml": sorted(m for m in sys.modules if m.startswith("jobs.ml"))}

later = set()
for path in pathlib.Path("webapp").rglob("*.py"):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            later.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            later.add(node.module)
for name in sorted(later):
    if name.split(".")[0] in ("jobs", "webapp"):
        importlib.import_module(name)
print(json.dumps({"at_import": at_import, "later": sorted(n for n in later if n.startswith("jobs")),
                  "forbidden": loaded(FORBIDDEN)}))
""".replace("FORBIDDEN", repr(set(FORBIDDEN)))


def run_fresh(code: str, data_dir) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter with the web's settings; it must exit 0."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings", "DATA_DIR": str(data_dir),
           "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_no_webapp_module_loads_tensorflow_keras_or_sklearn(tmp_path):
    result = run_fresh(PROBE, tmp_path)
    report = json.loads(result.stdout.strip().splitlines()[-1])

    assert report["at_import"]["forbidden"] == [], "importing the web's modules loads " + ", ".join(
        report["at_import"]["forbidden"])
    assert report["forbidden"] == [], (
        f"a module the web imports (one of {report['later']}) loads {', '.join(report['forbidden'])}")
    heavy = sorted(set(report["at_import"]["ml"]) - LIGHT_ML_MODULES)
    assert heavy == [], (f"the web's modules import ML code {heavy}; read catalogues from jobs.ml.catalog, "
                         "and import worker code inside the function that needs it")


SERVE = r"""
import django, sys
django.setup()
from django.urls import get_resolver
for pattern in get_resolver().url_patterns:  # every view module a request could reach, as the web server loads them
    pass
import webapp.sweeps.api, webapp.sweeps.views, webapp.sweeps.estimate
print("optuna" in sys.modules)
"""


def test_the_web_server_loads_optuna_only_when_a_sweep_is_made_or_advanced(tmp_path):
    result = run_fresh(SERVE, tmp_path)
    assert result.stdout.strip().splitlines()[-1] == "False", "serving pages imports Optuna"

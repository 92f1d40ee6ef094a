"""One declaration per parameter (issue 12, item 1): the API's validation, its docs, the launch
forms and /api/params/ all say what `webapp.experiments.params` says, so a default or a limit
cannot drift between them."""

from __future__ import annotations

import dataclasses
import re

import pytest

from webapp.experiments.params import DECLARATIONS

FORMS = {"train": "/train/", "train_captioner": "/captioner/"}


def form_inputs(html: str) -> dict[str, dict[str, str]]:
    """{name: {attribute: value}} of the <input>s of a page."""
    found = {}
    for tag in re.findall(r"<input\b[^>]*>", html):
        attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', tag))
        if "name" in attrs:
            found[attrs["name"]] = attrs
    return found


@pytest.mark.parametrize("kind", sorted(FORMS))
def test_the_launch_forms_take_their_defaults_and_limits_from_the_declarations(kind, alice, client):
    from webapp.datasets.models import Dataset

    Dataset.objects.create(owner=alice, name="d", kind="classification" if kind == "train" else "captions",
                           status="ready")  # the forms show their fields once there is a dataset
    client.force_login(alice)
    inputs = form_inputs(client.get(FORMS[kind]).content.decode())
    checked = 0
    for param in DECLARATIONS[kind].params:
        if param.name not in inputs or param.type in ("choice",):
            continue
        attrs = inputs[param.name]
        if param.type == "bool":
            assert attrs["type"] == "checkbox"
        else:
            assert float(attrs["min"]) == param.min and float(attrs["max"]) == param.max, (param.name, attrs)
            if param.default is not None:
                assert float(attrs["value"]) == param.default, (param.name, attrs)
        checked += 1
    assert checked >= 6, inputs.keys()


@pytest.mark.parametrize("kind", sorted(FORMS))
def test_the_launch_forms_draw_every_declared_parameter_from_its_declaration(kind, alice, client):
    """No field is placed by hand: each declared parameter is one drawn field, sent by its type, with the
    declared label and choices."""
    from webapp.datasets.models import Dataset

    Dataset.objects.create(owner=alice, name="d", kind="classification" if kind == "train" else "captions",
                           status="ready")
    client.force_login(alice)
    html = client.get(FORMS[kind]).content.decode()
    for param in DECLARATIONS[kind].params:
        assert len(re.findall(rf'name="{param.name}"[^>]*data-param="{param.type}"', html)) == 1, param.name
        assert f'data-field="{param.name}" data-label="{param.label}"' in html, param.name
        for choice in param.choices:
            assert f'<option value="{choice}"' in html, (param.name, choice)


@pytest.mark.parametrize("kind", sorted(DECLARATIONS))
def test_the_api_refuses_values_outside_the_declared_limits(kind, alice_api):
    for param in DECLARATIONS[kind].params:
        if param.type not in ("int", "float"):
            continue
        step = 1 if param.type == "int" else param.max * 0.01 or 0.01
        answer = alice_api.post("/api/jobs/", {"kind": kind, "params": {param.name: param.max + step}}, format="json")
        assert answer.status_code == 400, (param.name, answer.content)
        message = str(answer.json().get("params", {}).get(param.name))
        assert "less than or equal to" in message, (param.name, answer.json())


def test_api_params_and_the_openapi_docs_say_the_same(alice_api):
    listed = alice_api.get("/api/params/").json()
    assert set(listed) == set(DECLARATIONS)
    rate = next(p for p in listed["train"] if p["name"] == "learning_rate")
    assert rate == {**rate, "type": "float", "default": 0.001, "min": 1e-7, "max": 10.0, "sweep": True, "log": True}
    assert next(p for p in listed["train_captioner"] if p["name"] == "epochs")["default"] == 30

    schema = alice_api.get("/api/schema/", {"format": "json"}).json()
    documented = schema["components"]["schemas"]
    params_doc = documented["JobCreate"]["properties"]["params"]["description"]
    assert "dropout (float 0..0.9, default 0.5): Fraction of activations dropped" in params_doc
    assert "learning_rate (float 1e-07..10, default 0.001)" in params_doc
    listed_doc = documented["ParamsByKind"]["properties"]["train"]
    assert listed_doc["type"] == "array"


def test_the_sweep_form_shows_first_the_rows_each_kind_declares(alice, client):
    """The New sweep form's first rows come from the kind (JobKind.sweep_main), served with the other per-kind
    choices the form reads; each is a sweepable parameter of that kind."""
    import json

    from webapp.datasets.models import Dataset

    Dataset.objects.create(owner=alice, name="d", kind="classification", status="ready")  # the form needs one
    client.force_login(alice)
    html = client.get("/sweeps/").content.decode()
    choices = json.loads(re.search(r'<script id="sweep-choices" type="application/json">(.*?)</script>', html,
                                   re.S).group(1))
    assert choices["sweep_main"]["train"] == ["image_size", "epochs", "batch_size", "optimizer", "learning_rate",
                                              "mode"]
    assert choices["sweep_main"]["train_captioner"] == ["epochs", "batch_size", "learning_rate", "units", "dropout"]
    for kind, names in choices["sweep_main"].items():
        sweepable = {p["name"] for p in choices["params"][kind] if p["sweep"]}
        assert set(names) <= sweepable, (kind, set(names) - sweepable)


def test_the_compare_table_names_parameters_as_declared(alice, alice_api):
    from webapp.jobs.models import Job

    jobs = [Job.objects.create(owner=alice, kind="train", status="succeeded",
                               params={"architecture": "mlp", "learning_rate": rate, "epochs": 5}).id
            for rate in (0.01, 0.001)]
    answer = alice_api.get("/api/compare/", {"jobs": ",".join(map(str, jobs))})
    assert answer.status_code == 200, answer.content
    data = answer.json()
    assert data["differing"] == ["learning_rate"]
    assert data["param_labels"]["learning_rate"] == "Learning rate" and data["param_labels"]["epochs"] == "Epochs"


def test_a_parameter_declared_with_a_group_appears_in_its_form_by_itself(alice, client, monkeypatch):
    """Adding a parameter is one declaration: the form draws it and launch.js sends it by type."""
    from webapp.datasets.models import Dataset
    from webapp.experiments import params

    warmup = params.Param("warmup_epochs", "int", 2, "Warm-up", "Epochs at a rising learning rate.", unit="epochs",
                          min=0, max=20, group="training")
    schedule = params.Param("schedule", "choice", "cosine", "Schedule", choices=("constant", "cosine"),
                            group="training")
    from webapp.jobs import registry

    monkeypatch.setattr(registry.get("train"), "declaration",
                        dataclasses.replace(params.TRAIN, params=(*params.TRAIN.params, warmup, schedule)))
    Dataset.objects.create(owner=alice, name="d", kind="classification", status="ready")
    client.force_login(alice)
    html = client.get("/train/").content.decode()
    field = form_inputs(html)["warmup_epochs"]
    assert (field["data-param"], field["value"], field["min"], field["max"]) == ("int", "2", "0", "20")
    assert 'data-label="Warm-up"' in html and "Epochs at a rising learning rate." in html
    assert re.search(r'<select name="schedule" id="f-schedule" data-param="choice">'
                     r'<option value="constant">constant</option><option value="cosine" selected>', html)


# --- the worker's configs are built from the same declarations -------------------------------------

def _other_value(param):
    """A valid value of `param` that is not its declared default."""
    if param.type == "bool":
        return not param.default
    if param.type == "choice":
        return next(c for c in param.choices if c != param.default)
    value = param.max if param.default != param.max else param.min
    return int(value) if param.type == "int" else float(value)


# What a launch looks up rather than declares (jobs.ml.config.from_params's refs).
REFS = {"train": {"architecture": "mlp", "image_size": 28, "color_mode": "grayscale"}, "train_captioner": {}}


@pytest.mark.parametrize("kind", sorted(REFS))
def test_every_declared_parameter_reaches_the_ml_config_with_its_declared_default(kind):
    """A job's params become its training config by name (jobs.ml.config.from_params): each declared
    parameter fills a field of one of its kind's configs, with the same default when left out,
    and a value set at launch arrives as it was set."""
    from jobs.ml.config import from_params, param_fields

    declaration = DECLARATIONS[kind]
    assert declaration.configs
    reached = set()
    for config_class in declaration.configs:
        fields = param_fields(config_class)
        defaults = from_params(config_class, REFS[kind])
        chosen = {p.name: _other_value(p) for p in declaration.params if p.name not in REFS[kind]}
        built = from_params(config_class, {**REFS[kind], **chosen})
        for param in declaration.params:
            if param.name not in fields or param.name in REFS[kind]:
                continue
            reached.add(param.name)
            field = fields[param.name].name
            assert getattr(defaults, field) == param.default, (config_class.__name__, param.name)
            assert getattr(built, field) == chosen[param.name], (config_class.__name__, param.name)
    assert reached == {p.name for p in declaration.params} - set(REFS[kind])  # none is left unread


def test_a_config_converts_what_the_api_words_for_a_person():
    from jobs.ml.config import CaptionConfig, TrainConfig, TransferConfig, from_params

    assert from_params(TrainConfig, {**REFS["train"], "color_mode": "rgb"}).channels == 3
    assert from_params(TrainConfig, REFS["train"]).channels == 1
    assert from_params(CaptionConfig, {"units": 64}).embedding_dim == 64  # one width for both
    assert from_params(TransferConfig, {"dataset": 3, "backbone": "vgg16"}) == TransferConfig()  # refs ignored


def test_fine_tuning_defaults_are_the_transfer_configs():
    """The API fills what a fine-tuning launch leaves out with the values a TransferConfig uses."""
    from jobs.ml.config import MODE_DEFAULTS, TransferConfig

    finetune = TransferConfig(mode="finetune")
    assert {name: getattr(finetune, name) for name in MODE_DEFAULTS["finetune"]} == MODE_DEFAULTS["finetune"]
    extract = TransferConfig()
    assert (extract.learning_rate, extract.augment_flip) == (DECLARATIONS["train"]["learning_rate"].default,
                                                             DECLARATIONS["train"]["augment_flip"].default)

"""Launch forms draw their inputs from the parameter declarations (`webapp.experiments.params`):
`{% param_group "train" "training" %}` draws every parameter of a form group as a whole field,
`{% param_input "train" "epochs" %}` is one input with the declared default and limits. A form
never repeats a default, a range, a choice or a label."""

from __future__ import annotations

from django import template
from django.utils.html import format_html, format_html_join

from webapp.experiments.params import DECLARATIONS

register = template.Library()


def _number(value) -> str:
    """A limit or default as an HTML attribute: 1e-07 -> 0.0000001, 10.0 -> 10."""
    if isinstance(value, float):
        text = f"{value:.10f}".rstrip("0").rstrip(".")
        return text or "0"
    return str(value)


@register.simple_tag
def param_input(kind: str, name: str, id_prefix: str = "f-", **attrs):
    """<input type="number"> (a checkbox for a bool, a <select> for a choice) for parameter `name` of `kind`.

    Keyword arguments override the value (`value=3` for a field that starts off) or add attributes
    (`disabled=True`, `aria_label="..."`; underscores become dashes)."""
    param = DECLARATIONS[kind][name]
    value = attrs.pop("value", param.default)
    base = {"name": name, "id": f"{id_prefix}{name}"}
    if param.type == "choice":
        options = format_html_join("", '<option value="{}"{}>{}</option>',
                                   ((c, " selected" if c == value else "", words) for c, words in param.choice_options))
        return format_html("<select {}>{}</select>", _attributes({**base, **attrs}), options)
    if param.type == "bool":
        base.update(type="checkbox", checked=bool(value))
    else:
        base.update(type="number", step=param.input_step, inputmode="numeric" if param.type == "int" else "decimal",
                    value=None if value is None else _number(value), min=_limit(param.min), max=_limit(param.max))
    return format_html("<input {}>", _attributes({**base, **attrs}))


def _limit(value) -> str | None:
    return None if value is None else _number(value)


def _attributes(attrs: dict):
    """HTML attributes: underscores become dashes, True a bare flag, False and None left out."""
    attrs = {key.replace("_", "-"): v for key, v in attrs.items() if v is not None and v is not False}
    pairs = format_html_join(" ", '{}="{}"', ((k, v) for k, v in attrs.items() if v is not True))
    flags = format_html_join("", " {}", ((k,) for k, v in attrs.items() if v is True))
    return format_html("{}{}", pairs, flags)


@register.inclusion_tag("experiments/_param_group.html", takes_context=True)
def param_group(context, kind: str, group: str) -> dict:
    """Every parameter of `kind` declared in form group `group`, as whole fields (label, input,
    hint, error slot), each as its declaration says (a checkbox for a bool, a <select> with the
    choices' words, a checkbox that turns a nullable number on). Their inputs carry `data-param`,
    so the form script sends them by type without naming them: a parameter declared with a group
    needs no other edit to reach a job. A page's `field_warnings` ({name: {"id", "text"}}) adds a
    warning its script shows under that field."""
    warnings = context.get("field_warnings") or {}
    return {"kind": kind, "fields": [_field(kind, p, warnings.get(p.name))
                                     for p in DECLARATIONS[kind].params if p.group == group]}


def _field(kind: str, param, warning) -> dict:
    if not param.toggle:
        # What an empty number means (launch.js): null for a nullable one, the server's choice for an optional one.
        empty = "null" if param.nullable else "omit" if param.optional else None
        return {"param": param, "warning": warning,
                "input": param_input(kind, param.name, data_param=param.type, data_empty=empty,
                                     placeholder=param.placeholder or None)}
    on = param.default is not None
    before, _, after = param.inline.partition("{}")
    return {"param": param, "warning": warning, "on": on, "before": before.strip(), "after": after.strip(),
            "input": param_input(kind, param.name, data_param=param.type, value=param.default if on else param.suggest,
                                 disabled=not on, aria_label=f"{param.label}, in {param.unit}")}


@register.simple_tag
def param_form_groups(kind: str) -> tuple:
    """The Advanced groups of `kind`'s launch form (`{% param_form_groups kind as groups %}`)."""
    return DECLARATIONS[kind].form_groups

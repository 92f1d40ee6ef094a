"""Launch forms draw their inputs from the parameter declarations (`webapp.experiments.params`):
`{% param_input "train" "epochs" %}` is the number input with the declared default and limits,
`{% param_label %}` and `{% param_help %}` its words. A form never repeats a default or a range."""

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
        extra = {key.replace("_", "-"): v for key, v in attrs.items()}
        options = format_html_join("", '<option value="{}"{}>{}</option>',
                                   ((c, " selected" if c == value else "", c) for c in param.choices))
        return format_html("<select {}>{}</select>", format_html_join(" ", '{}="{}"', {**base, **extra}.items()),
                           options)
    if param.type == "bool":
        base["type"] = "checkbox"
        if value:
            base["checked"] = True
    else:
        base.update(type="number", step=param.input_step,
                    inputmode="numeric" if param.type == "int" else "decimal")
        if value is not None:
            base["value"] = _number(value)
        if param.min is not None:
            base["min"] = _number(param.min)
        if param.max is not None:
            base["max"] = _number(param.max)
    base.update({key.replace("_", "-"): v for key, v in attrs.items()})
    flags = [key for key, v in base.items() if v is True]
    pairs = [(key, v) for key, v in base.items() if v is not True and v is not False and v is not None]
    return format_html("<input {}{}>", format_html_join(" ", '{}="{}"', pairs),
                       format_html_join("", " {}", ((flag,) for flag in flags)))


@register.inclusion_tag("experiments/_param_group.html")
def param_group(kind: str, group: str) -> dict:
    """Every parameter of `kind` declared in form group `group`, as whole fields (label, input,
    help, error slot). Their inputs carry `data-param`, so the form script sends them by type
    without naming them: a parameter declared with a group needs no other edit to reach a job."""
    declared = [p for p in DECLARATIONS[kind].params if p.group == group]
    return {"kind": kind, "fields": [{"param": p, "input": param_input(kind, p.name, data_param=p.type)}
                                     for p in declared]}


@register.simple_tag
def param_label(kind: str, name: str) -> str:
    return DECLARATIONS[kind][name].label


@register.simple_tag
def param_help(kind: str, name: str) -> str:
    return DECLARATIONS[kind][name].help

"""GET /api/params/: every job kind's declared parameters (webapp.experiments.params), for API
clients building forms and for checking a sweep's search space before it is sent."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.experiments.params import DECLARATIONS


class ParamSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=["int", "float", "bool", "choice"])
    default = serializers.JSONField(allow_null=True)
    label = serializers.CharField()
    help = serializers.CharField(allow_blank=True)
    unit = serializers.CharField(allow_blank=True)
    sweep = serializers.BooleanField(help_text="Whether a sweep may vary it.")
    nullable = serializers.BooleanField(help_text="Whether null is a value (off).")
    min = serializers.FloatField(required=False, allow_null=True)
    max = serializers.FloatField(required=False, allow_null=True)
    log = serializers.BooleanField(required=False, help_text="Whether a sweep samples it on a log scale.")
    choices = serializers.ListField(child=serializers.CharField(), required=False)


ParamsByKindSerializer = type(serializers.Serializer)(
    "ParamsByKindSerializer", (serializers.Serializer,),
    {kind: ParamSerializer(many=True, help_text=f"The parameters of {kind} jobs, in form order.")
     for kind in DECLARATIONS})


def params_help() -> str:
    """The `params` of POST /api/jobs/ in words, per kind: name, type, default, range, what it does."""
    lines = []
    for kind, declaration in DECLARATIONS.items():
        lines.append(f"{kind}:")
        for p in declaration.params:
            bounds = f" {p.min:g}..{p.max:g}" if p.min is not None and p.max is not None else ""
            choices = f" one of {', '.join(p.choices)}" if p.choices else ""
            default = "" if p.optional else f", default {p.default}"
            lines.append(f"  {p.name} ({p.type}{bounds}{choices}{default}): {p.help}")
    return "\n".join(lines)


class ParamsView(APIView):
    """{job kind: [parameter declaration, ...]} in form order."""

    @extend_schema(responses={200: ParamsByKindSerializer})
    def get(self, request):
        return Response({kind: [p.to_dict() for p in declaration.params]
                         for kind, declaration in DECLARATIONS.items()})

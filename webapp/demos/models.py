"""Share links: one unguessable token that opens one caption model's public demo, nothing else."""

from __future__ import annotations

import secrets

from django.db import models
from django.utils import timezone

TOKEN_BYTES = 24  # 192 random bits, 32 URL-safe characters


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


class ShareLink(models.Model):
    """The public demo of a caption model. Revoking deletes the row, so the link 404s at once.

    `examples` are dataset item ids chosen when the link was made (test-split images the model
    never trained on); the demo serves those images and only those, by position.
    """

    model = models.OneToOneField("experiments.TrainedModel", on_delete=models.CASCADE, related_name="share_link")
    token = models.CharField(max_length=64, unique=True, default=new_token)
    examples = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Demo of {self.model}"

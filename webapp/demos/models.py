"""Share links: one unguessable token that opens one caption model's public demo, nothing else."""

from __future__ import annotations

import hashlib
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

    @classmethod
    def revoke(cls, model) -> bool:
        """Switch off `model`'s demo link, if it has one, remembering that its token was revoked (so the
        old URL can say so). Sharing again makes a new token: a revoked link never comes back."""
        link = cls.objects.filter(model=model).first()
        if link is None:
            return False
        RevokedLink.objects.get_or_create(digest=RevokedLink.digest_of(link.token))
        link.delete()
        return True


class RevokedLink(models.Model):
    """A demo token its owner switched off (revoked, or its model deleted), kept as a SHA-256 digest.

    It lets the old URL answer "switched off by its owner" instead of "no demo here", without the
    database keeping the token itself.
    """

    digest = models.CharField(max_length=64, unique=True)
    revoked_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Revoked demo {self.digest[:8]}"

    @staticmethod
    def digest_of(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()

    @classmethod
    def was_revoked(cls, token: str) -> bool:
        return cls.objects.filter(digest=cls.digest_of(token)).exists()

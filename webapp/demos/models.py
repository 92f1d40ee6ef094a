"""Share links: one unguessable token that opens one caption model's public demo, nothing else."""

from __future__ import annotations

import hashlib
import secrets

from django.db import models
from django.db.models.signals import post_delete
from django.dispatch import receiver
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
        """Switch off `model`'s demo link, if it has one (its token is remembered as revoked, below). Sharing
        again makes a new token: a revoked link never comes back."""
        return bool(cls.objects.filter(model=model).delete()[0])


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


@receiver(post_delete, sender=ShareLink, dispatch_uid="demos.remember_revoked_link")
def remember_revoked_link(sender, instance: ShareLink, **kwargs) -> None:
    """However a link goes (revoked, or its model or run deleted, which cascades here), its old URL can
    say it was switched off by its owner: the experiments app deletes models without knowing of demos."""
    RevokedLink.objects.get_or_create(digest=RevokedLink.digest_of(instance.token))

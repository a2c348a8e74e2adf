"""Abstract model bases shared by the apps."""

from django.db import models


class TimeStampedModel(models.Model):
    """``created_at`` / ``updated_at`` in UTC."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

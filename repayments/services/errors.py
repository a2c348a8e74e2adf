"""The error a service raises when a staff request breaks a rule."""

from __future__ import annotations


class RuleViolation(ValueError):
    """A request the service refuses; nothing was changed.

    ``field`` names the form field the message belongs to (``"__all__"`` for the
    whole form), so a view can show it next to the input.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)

"""Adapter placeholder: to be implemented."""

CHANNEL_TYPES: tuple[str, ...] = ()
ERRORS: dict = {}

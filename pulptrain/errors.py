"""Exceptions raised by pulptrain."""


class PulptrainError(Exception):
    """Base class of pulptrain's own errors."""


class StatusError(PulptrainError, ValueError):
    """A C runtime call returned a non-OK status.

    ``status`` is the numeric ``pt_status``, ``where`` the C function and
    ``reason`` the runtime's description of the status."""

    def __init__(self, status: int, where: str, reason: str):
        self.status = status
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason} (status {status})")


class FormatError(PulptrainError, ValueError):
    """A file is corrupt, truncated or not in the expected format."""

"""Errors a user can cause; the CLI turns them into one line on stderr and exit status 2."""

from __future__ import annotations


class AutostError(Exception):
    """Base class of every error caused by user input (bad file, bad value, missing data)."""


class ConfigError(AutostError, ValueError):
    """An invalid architecture config; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class UnknownNameError(AutostError, KeyError):
    """A registry lookup of a name that does not exist; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""

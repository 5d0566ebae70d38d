"""The package version (one place: ``autost.__version__`` and every record of it read this)."""

__version__ = "0.1.0"

"""Errors tiltwatch raises on purpose: each carries a one-line message for the user."""


class TiltwatchError(Exception):
    """Base of every error meant to be shown to a user as one line."""


class InputError(TiltwatchError):
    """An input (file, image, stream, dataset) that cannot be used, named in the message."""


class ConfigError(TiltwatchError):
    """A configuration value or file that is wrong, named in the message."""


class ModelError(TiltwatchError):
    """A model file that cannot be loaded or does not fit the pipeline."""

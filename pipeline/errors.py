"""User-facing errors: each names what is wrong and how to fix it.

The CLI prints these as one message (no traceback); anything else is a bug and keeps its traceback.
"""


class DrlimError(Exception):
    """An error caused by the user's input or environment, with a message that says how to fix it."""


class ConfigError(DrlimError):
    """A job file or override is invalid."""


class DataError(DrlimError):
    """Input data is missing, corrupt or inconsistent with the job."""


class StageError(DrlimError):
    """A stage found outputs of an earlier stage it cannot trust."""


class TrackingError(DrlimError):
    """The MLflow tracking server or registry cannot be used."""


def first_line(exc: BaseException) -> str:
    """The first line of a library's exception message (without a trailing full stop), for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else exc.__class__.__name__

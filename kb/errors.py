"""One error hierarchy. Messages name the bad value and the valid choices.

The CLI turns any `LinkerError` into one line on stderr and exit status 2.
"""


class LinkerError(Exception):
    """Base of every error a user can cause and fix."""


class ConfigError(LinkerError):
    """A bad option, setting or combination of settings."""


class KBError(LinkerError):
    """A knowledge base is missing, corrupt, or cannot be built from the given input."""


class InputError(LinkerError):
    """A bad input file or document (missing, wrong format, malformed)."""


class IndexMismatchError(LinkerError):
    """An index was built for another KB or model than the one it is loaded against."""


class ModelLoadError(LinkerError):
    """A model could not be found or loaded."""


class KBBusyError(KBError):
    """Another process is writing the same KB (it holds the KB's write lock)."""

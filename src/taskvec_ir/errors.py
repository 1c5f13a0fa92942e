"""The errors a user can cause and fix: a config value, an id, a file, a checkpoint, an output folder.

The command reports these as one line naming what to fix, without a traceback; any other exception is a bug
and keeps its traceback. They subclass the builtin a caller would expect (``ValueError`` for a bad value,
``FileNotFoundError`` for a missing file), so code that catches those still does.
"""


class UserError(ValueError):
    """A value the user gave is wrong; the message names the key or thing to fix."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""

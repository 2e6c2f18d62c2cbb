"""The one exception type netshrink raises for bad input: arguments, files, configurations."""


class NetshrinkError(ValueError):
    """A wrong argument, file or configuration. The message names the culprit and the fix."""


class DataError(NetshrinkError):
    """A data set that is missing, corrupt or does not fit."""

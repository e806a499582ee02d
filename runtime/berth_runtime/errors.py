"""Errors that stop the runtime at start-up with a message saying what would work."""


class LoadError(RuntimeError):
    """The model cannot be served as asked (bad path, pickled weights, unsupported mode)."""

"""The one error class for bad input from the user."""


class UserError(Exception):
    """Bad flags, configuration, task, run name or file: reported as one line, exit code 2,
    nothing run. Any other exception reaching the command line is a bug in runhands, never
    passed off as bad usage."""

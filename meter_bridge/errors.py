"""Errors shared by the bridge's layers."""


class JobError(Exception):
    """A job could not be executed; ``retryable`` tells Odoo whether to try again."""

    def __init__(self, message, retryable=True):
        super().__init__(message)
        self.retryable = retryable


class MeterUnreachable(JobError):
    """No answer from the meter (connection refused, timeout): retry later."""

    def __init__(self, message):
        super().__init__(message, retryable=True)


class MeterRefused(JobError):
    """The meter answered with a DLMS error: retrying the same request will not help."""

    def __init__(self, message, code=None):
        super().__init__(message, retryable=False)
        self.code = code

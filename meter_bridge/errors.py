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


class InvocationCountersUsedUp(JobError):
    """HLS-GMAC: the next ciphered APDU would need an invocation counter above the block
    Odoo's claim reserved for this job, which Odoo would refuse in the report (and the meter
    would then refuse the next association as a replay). Retryable: the next claim reserves
    a new block. ``invocation_counter``: the last counter used, for Odoo to keep."""

    def __init__(self, invocation_counter: int, limit: int):
        super().__init__(
            f"invocation counters reserved for this job used up: the next APDU would use "
            f"{invocation_counter + 1}, above the limit {limit}; the last one used is "
            f"{invocation_counter}",
            retryable=True,
        )
        self.invocation_counter = invocation_counter
        self.limit = limit

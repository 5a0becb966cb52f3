"""Structured logging for the bridge: one JSON object per line, or readable text.

Call sites use :func:`event`, so every line carries an ``event`` name plus fields
(``job_id``, ``meter``, ...) that log shippers can index without parsing prose.
"""

import json
import logging
import sys
from datetime import datetime, timezone

# Attributes every LogRecord has; anything else was passed by event() and is a field.
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _fields(record):
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


def _ts(record):
    return (
        datetime.fromtimestamp(record.created, tz=timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class JsonFormatter(logging.Formatter):
    def format(self, record):
        fields = _fields(record)
        out = {
            "ts": _ts(record),
            "level": record.levelname.lower(),
            "event": fields.pop("event", None) or record.getMessage(),
            "logger": record.name,
        }
        msg = record.getMessage()
        if msg and msg != out["event"]:
            out["msg"] = msg
        out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record):
        fields = _fields(record)
        name = fields.pop("event", None)
        msg = record.getMessage()
        parts = [_ts(record), f"{record.levelname:<7}", name or msg]
        if name and msg and msg != name:
            parts.append(msg)
        parts += [f"{k}={v}" for k, v in fields.items()]
        line = " ".join(str(p) for p in parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(level="INFO", fmt="json", stream=None):
    """Configure the root logger once, for the CLI (library code never calls this)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


def event(logger, level, name, msg="", *, exc_info=None, **fields):
    """Log ``name`` with structured ``fields`` (None values are dropped)."""
    extra = {"event": name}
    # LogRecord refuses extra keys that shadow its own attributes ("name", "args", ...).
    extra.update(
        {(f"{k}_" if k in _STANDARD_ATTRS else k): v for k, v in fields.items() if v is not None}
    )
    logger.log(level, msg or name, extra=extra, exc_info=exc_info)

"""Bridge settings: defaults < config file < environment (MB_*) < command line.

The config file is INI with one ``[meter_bridge]`` section, or TOML with a ``[meter_bridge]``
table when its name ends in ``.toml`` (read with ``tomllib``, Python >= 3.11). Keys are the
field names below; an unknown key is an error so that typos do not pass silently::

    [meter_bridge]
    odoo_url = https://odoo.example.com
    db = smartpm
    login = bridge@example.com
    api_key = 0123abcd...
    concurrency = 16
"""

import configparser
import ipaddress
import os
import socket
from dataclasses import dataclass, fields
from urllib.parse import urlsplit

SECTION = "meter_bridge"
CONFIG_ENV = "MB_CONFIG"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("json", "text")


class ConfigError(Exception):
    """Missing or invalid settings; the message lists every problem, one per line."""


def default_bridge_id():
    return f"{socket.gethostname()}-{os.getpid()}"


# key, env var, type, default (None = required), help text (used by --help).
SPEC = [
    ("odoo_url", "MB_ODOO_URL", str, None, "Odoo base URL, e.g. https://odoo.example.com"),
    (
        "allow_insecure_http",
        "MB_ALLOW_INSECURE_HTTP",
        bool,
        False,
        "accept a plain http:// Odoo URL on another host than loopback (the API key and "
        "the meters' keys would cross the network unencrypted; for a lab only)",
    ),
    ("db", "MB_ODOO_DB", str, None, "Odoo database name"),
    ("login", "MB_ODOO_LOGIN", str, None, "login of the Odoo user in the Bridge API group"),
    ("api_key", "MB_ODOO_API_KEY", str, None, "API key of that user (used as its password)"),
    ("bridge_id", "MB_BRIDGE_ID", str, "", "name of this bridge in Odoo (default hostname-pid)"),
    ("concurrency", "MB_CONCURRENCY", int, 8, "jobs run in parallel (worker threads)"),
    ("prefetch", "MB_PREFETCH", int, 0, "jobs claimed ahead of free workers"),
    (
        "credit_lane",
        "MB_CREDIT_LANE",
        int,
        2,
        "workers above concurrency that only credit jobs use: a purchase starts at once "
        "even while every worker reads a slow meter",
    ),
    ("batch_size", "MB_BATCH_SIZE", int, 20, "most jobs asked for in one claim call"),
    (
        "poll_interval",
        "MB_POLL_INTERVAL",
        float,
        5.0,
        "seconds between claims when idle and long-poll is off or unavailable",
    ),
    (
        "long_poll_timeout",
        "MB_LONG_POLL_TIMEOUT",
        float,
        25.0,
        "seconds of one wait_for_jobs long-poll (0 turns long-poll off)",
    ),
    (
        "lease_seconds",
        "MB_LEASE_SECONDS",
        int,
        15,
        "lease asked for claimed jobs; renewed every third of it while they run, so a job "
        "whose bridge died is handed to another bridge this long after",
    ),
    ("job_timeout", "MB_JOB_TIMEOUT", float, 60.0, "deadline given to one job on the meter"),
    ("rpc_timeout", "MB_RPC_TIMEOUT", float, 30.0, "timeout of one call to Odoo, seconds"),
    (
        "grace_seconds",
        "MB_GRACE_SECONDS",
        float,
        30.0,
        "on stop, how long running jobs may finish and results be reported",
    ),
    (
        "backoff_max",
        "MB_BACKOFF_MAX",
        float,
        60.0,
        "longest wait between retries while Odoo is unreachable",
    ),
    ("log_level", "MB_LOG_LEVEL", str, "INFO", "DEBUG, INFO, WARNING or ERROR"),
    ("log_format", "MB_LOG_FORMAT", str, "json", "json (one object per line) or text"),
    # Test hook: "module:function" replacing meter_bridge.executors.execute_job.
    ("executor", "MB_EXECUTOR", str, "", None),
]
KEYS = {key for key, *_ in SPEC}
ENV_VARS = {key: env for key, env, *_ in SPEC}


@dataclass(frozen=True)
class Settings:
    odoo_url: str
    db: str
    login: str
    api_key: str
    allow_insecure_http: bool = False
    bridge_id: str = ""
    concurrency: int = 8
    prefetch: int = 0
    credit_lane: int = 2
    batch_size: int = 20
    poll_interval: float = 5.0
    long_poll_timeout: float = 25.0
    lease_seconds: int = 15
    job_timeout: float = 60.0
    rpc_timeout: float = 30.0
    grace_seconds: float = 30.0
    backoff_max: float = 60.0
    log_level: str = "INFO"
    log_format: str = "json"
    executor: str = ""

    def __post_init__(self):
        if not self.bridge_id:
            object.__setattr__(self, "bridge_id", default_bridge_id())

    def redacted(self):
        """The settings as a dict safe to log."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["api_key"] = "***" if self.api_key else ""
        return out


def is_loopback_url(url):
    """True for a URL naming this machine: localhost, 127.0.0.0/8 or ::1."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_config_file(path):
    """Return {key: raw value} from an INI or TOML file; raise ConfigError on any problem."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file {path}: not found")
    if path.endswith(".toml"):
        try:
            import tomllib
        except ImportError as exc:  # Python 3.10
            raise ConfigError(f"config file {path}: TOML needs Python >= 3.11; use INI") from exc
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"config file {path}: {exc}") from exc
        section = data.get(SECTION)
        if not isinstance(section, dict):
            raise ConfigError(f"config file {path}: no [{SECTION}] table")
        return dict(section)
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh)
    except (OSError, configparser.Error) as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc
    if not parser.has_section(SECTION):
        raise ConfigError(f"config file {path}: no [{SECTION}] section")
    return dict(parser.items(SECTION))


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")


def _convert(key, typ, raw, source):
    if typ is str:
        return str(raw).strip()
    if typ is bool:
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in TRUE_WORDS + FALSE_WORDS:
            return word in TRUE_WORDS
        raise ValueError(f"{key}: {raw!r} is not a yes/no value ({source})")
    if isinstance(raw, bool):
        raise ValueError(f"{key}: {raw!r} is not a number ({source})")
    try:
        if typ is int:
            if isinstance(raw, float):
                raise ValueError
            return int(str(raw).strip())
        return float(str(raw).strip())
    except ValueError:
        kind = "an integer" if typ is int else "a number"
        raise ValueError(f"{key}: {raw!r} is not {kind} ({source})") from None


def _check(values, sources):
    problems = []

    def bad(key, text):
        problems.append(f"{key}: {text} ({sources.get(key, 'default')})")

    url = values.get("odoo_url") or ""
    if url and not url.startswith(("http://", "https://")):
        bad("odoo_url", f"{url!r} must start with http:// or https://")
    elif url.startswith("http://") and not is_loopback_url(url):
        if not values["allow_insecure_http"]:
            bad(
                "odoo_url",
                f"{url!r} is plain HTTP to another host than loopback: the API key and the "
                "meters' keys in claimed jobs would cross the network unencrypted; use "
                "https:// (or set allow_insecure_http / --allow-insecure-http for a lab)",
            )
    ranges = {
        # one thread per association in flight: on slow links (GPRS, 0.5-2 s a round trip)
        # a bridge needs hundreds (bench/bench_slow.py); a thread waiting on its socket costs
        # about 0.1 MB and no CPU
        "concurrency": (1, 2048),
        "prefetch": (0, 1000),
        "credit_lane": (0, 64),
        "batch_size": (1, 1000),
        "lease_seconds": (2, 86400),
        "long_poll_timeout": (0, 30),
    }
    for key, (lo, hi) in ranges.items():
        if not lo <= values[key] <= hi:
            bad(key, f"{values[key]} is outside {lo}..{hi}")
    for key in ("poll_interval", "job_timeout", "rpc_timeout", "backoff_max"):
        if values[key] <= 0:
            bad(key, f"{values[key]} must be greater than 0")
    if values["grace_seconds"] < 0:
        bad("grace_seconds", f"{values['grace_seconds']} must not be negative")
    if values["log_level"].upper() not in LOG_LEVELS:
        bad("log_level", f"{values['log_level']!r} is not one of {', '.join(LOG_LEVELS)}")
    if values["log_format"].lower() not in LOG_FORMATS:
        bad("log_format", f"{values['log_format']!r} is not one of {', '.join(LOG_FORMATS)}")
    if values["executor"] and ":" not in values["executor"]:
        bad("executor", f"{values['executor']!r} must be module:function")
    return problems


def load_settings(config_path=None, env=None, overrides=None):
    """Build Settings from defaults, the config file, ``env`` and ``overrides`` (CLI).

    ``config_path`` defaults to $MB_CONFIG. Raises ConfigError listing every problem.
    """
    env = os.environ if env is None else env
    config_path = config_path or env.get(CONFIG_ENV) or None
    raw, sources = {}, {}
    if config_path:
        file_values = read_config_file(config_path)
        unknown = sorted(set(file_values) - KEYS)
        if unknown:
            raise ConfigError(
                f"config file {config_path}: unknown key(s) {', '.join(unknown)}; "
                f"known keys: {', '.join(k for k, *_ in SPEC if k != 'executor')}"
            )
        for key, value in file_values.items():
            raw[key], sources[key] = value, f"config file {config_path}"
    for key, env_name, *_ in SPEC:
        if env.get(env_name, "") != "":
            raw[key], sources[key] = env[env_name], f"environment {env_name}"
    for key, value in (overrides or {}).items():
        if key not in KEYS:
            raise ConfigError(f"unknown setting {key!r}")
        if value is not None:
            raw[key], sources[key] = value, "command line"

    values, problems = {}, []
    for key, env_name, typ, default, _help in SPEC:
        if key not in raw:
            if default is None:
                problems.append(
                    f"{key}: missing; set {env_name}, the config file key {key!r}, "
                    f"or --{key.replace('_', '-')}"
                )
                values[key] = ""
            else:
                values[key] = default
            continue
        try:
            values[key] = _convert(key, typ, raw[key], sources[key])
        except ValueError as exc:
            problems.append(str(exc))
            values[key] = default if default is not None else ""
        if default is None and values[key] == "":
            problems.append(f"{key}: empty ({sources[key]})")
    # Failed conversions left valid defaults behind, so the range checks still make sense.
    problems += _check(values, sources)
    if problems:
        raise ConfigError("\n".join(problems))
    values["log_level"] = values["log_level"].upper()
    values["log_format"] = values["log_format"].lower()
    values["odoo_url"] = values["odoo_url"].rstrip("/")
    return Settings(**values)

"""Bridge settings: defaults < config file < environment < command line, clear errors."""

import os
import socket

import pytest

from meter_bridge.config import ConfigError, load_settings

pytestmark = pytest.mark.timeout(10)

REQUIRED_ENV = {
    "MB_ODOO_URL": "https://odoo.test:8069/",
    "MB_ODOO_DB": "smartpm",
    "MB_ODOO_LOGIN": "bridge@example.com",
    "MB_ODOO_API_KEY": "k3y",
}


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_defaults_apply_when_only_required_settings_are_given():
    s = load_settings(env=REQUIRED_ENV)
    assert s.odoo_url == "https://odoo.test:8069"  # trailing slash dropped
    assert (s.concurrency, s.lease_seconds, s.log_format, s.log_level) == (8, 15, "json", "INFO")
    assert s.bridge_id == f"{socket.gethostname()}-{os.getpid()}"


def test_environment_overrides_file_and_file_overrides_defaults(tmp_path):
    path = write(
        tmp_path,
        "bridge.ini",
        """
[meter_bridge]
odoo_url = https://from-file.example.com
db = filedb
login = filelogin
api_key = filekey
concurrency = 3
poll_interval = 2.5
bridge_id = file-bridge
""",
    )
    s = load_settings(config_path=path, env={"MB_CONCURRENCY": "12", "MB_ODOO_DB": "envdb"})
    assert s.concurrency == 12 and s.db == "envdb"
    assert s.poll_interval == 2.5 and s.bridge_id == "file-bridge"
    assert s.odoo_url == "https://from-file.example.com"
    assert s.lease_seconds == 15


def test_command_line_overrides_environment():
    s = load_settings(
        env={**REQUIRED_ENV, "MB_CONCURRENCY": "12"},
        overrides={"concurrency": 2, "lease_seconds": None},
    )
    assert s.concurrency == 2 and s.lease_seconds == 15


def test_config_file_path_can_come_from_mb_config(tmp_path):
    path = write(
        tmp_path,
        "bridge.toml",
        """
[meter_bridge]
odoo_url = "https://toml.test"
db = "tomldb"
login = "bridge"
api_key = "secret"
concurrency = 4
log_format = "text"
""",
    )
    s = load_settings(env={"MB_CONFIG": path})
    assert (s.db, s.concurrency, s.log_format) == ("tomldb", 4, "text")


def test_missing_required_settings_are_all_named_with_their_env_var():
    with pytest.raises(ConfigError) as info:
        load_settings(env={"MB_ODOO_URL": "https://x"})
    text = str(info.value)
    for key, env in (
        ("db", "MB_ODOO_DB"),
        ("login", "MB_ODOO_LOGIN"),
        ("api_key", "MB_ODOO_API_KEY"),
    ):
        assert f"{key}: missing; set {env}" in text
    assert "odoo_url" not in text


@pytest.mark.parametrize(
    "env_name,value,expected",
    [
        (
            "MB_CONCURRENCY",
            "many",
            "concurrency: 'many' is not an integer (environment MB_CONCURRENCY)",
        ),
        ("MB_CONCURRENCY", "0", "concurrency: 0 is outside 1..2048"),
        ("MB_CONCURRENCY", "2049", "concurrency: 2049 is outside 1..2048"),
        ("MB_LEASE_SECONDS", "1.5", "lease_seconds: '1.5' is not an integer"),
        ("MB_POLL_INTERVAL", "-1", "poll_interval: -1.0 must be greater than 0"),
        ("MB_LONG_POLL_TIMEOUT", "45", "long_poll_timeout: 45.0 is outside 0..30"),
        ("MB_LOG_FORMAT", "xml", "log_format: 'xml' is not one of json, text"),
        ("MB_LOG_LEVEL", "loud", "log_level: 'loud' is not one of DEBUG"),
        ("MB_ODOO_URL", "odoo.test", "odoo_url: 'odoo.test' must start with http://"),
    ],
)
def test_invalid_values_give_a_clear_error_naming_their_source(env_name, value, expected):
    with pytest.raises(ConfigError) as info:
        load_settings(env={**REQUIRED_ENV, env_name: value})
    assert expected in str(info.value)


def test_unknown_key_in_config_file_is_an_error(tmp_path):
    path = write(tmp_path, "bridge.ini", "[meter_bridge]\nconcurency = 4\n")
    with pytest.raises(ConfigError, match="unknown key.*concurency"):
        load_settings(config_path=path, env=REQUIRED_ENV)


def test_missing_config_file_or_section_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(config_path=str(tmp_path / "nope.ini"), env=REQUIRED_ENV)
    path = write(tmp_path, "bridge.ini", "[bridge]\nconcurrency = 4\n")
    with pytest.raises(ConfigError, match=r"no \[meter_bridge\] section"):
        load_settings(config_path=path, env=REQUIRED_ENV)


def test_bad_value_in_config_file_names_the_file(tmp_path):
    path = write(tmp_path, "bridge.toml", '[meter_bridge]\nbatch_size = "lots"\n')
    with pytest.raises(ConfigError, match=r"batch_size: 'lots' is not an integer \(config file"):
        load_settings(config_path=path, env=REQUIRED_ENV)


def test_redacted_settings_hide_the_api_key():
    assert load_settings(env=REQUIRED_ENV).redacted()["api_key"] == "***"


@pytest.mark.parametrize(
    "url",
    [
        "http://odoo.example.com",
        "http://10.0.0.5:8069",
        "http://127.0.0.1.example.com",
        "http://localhost.evil.example:8069",
    ],
)
def test_plain_http_to_another_host_is_refused(url):
    with pytest.raises(ConfigError) as info:
        load_settings(env={**REQUIRED_ENV, "MB_ODOO_URL": url})
    text = str(info.value)
    assert f"odoo_url: {url!r} is plain HTTP to another host than loopback" in text
    assert "--allow-insecure-http" in text


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8069", "http://127.0.0.2", "http://localhost:8069", "http://[::1]:8069"],
)
def test_plain_http_to_loopback_is_accepted(url):
    assert load_settings(env={**REQUIRED_ENV, "MB_ODOO_URL": url}).odoo_url == url


def test_plain_http_elsewhere_only_when_told_so(tmp_path):
    env = {**REQUIRED_ENV, "MB_ODOO_URL": "http://odoo.lab:8069"}
    for told in (
        {"env": {**env, "MB_ALLOW_INSECURE_HTTP": "yes"}},
        {"env": env, "overrides": {"allow_insecure_http": True}},
        {
            "env": env,
            "config_path": write(tmp_path, "b.ini", "[meter_bridge]\nallow_insecure_http = on\n"),
        },
        {
            "env": env,
            "config_path": write(
                tmp_path, "b.toml", "[meter_bridge]\nallow_insecure_http = true\n"
            ),
        },
    ):
        s = load_settings(**told)
        assert (s.odoo_url, s.allow_insecure_http) == ("http://odoo.lab:8069", True)
    assert load_settings(env=REQUIRED_ENV).allow_insecure_http is False
    with pytest.raises(ConfigError, match="allow_insecure_http: 'perhaps' is not a yes/no value"):
        load_settings(env={**env, "MB_ALLOW_INSECURE_HTTP": "perhaps"})
    with pytest.raises(ConfigError, match="plain HTTP"):
        load_settings(env={**env, "MB_ALLOW_INSECURE_HTTP": "0"})


def test_cli_flag_allows_insecure_http():
    from meter_bridge import cli

    args = cli.build_parser().parse_args(
        ["check", "--odoo-url", "http://odoo.lab", "--db", "d", "--login", "l", "--api-key", "k"]
    )
    with pytest.raises(ConfigError, match="plain HTTP"):
        cli._load(args)
    args = cli.build_parser().parse_args(
        [
            "check",
            "--odoo-url",
            "http://odoo.lab",
            "--db",
            "d",
            "--login",
            "l",
            "--api-key",
            "k",
            "--allow-insecure-http",
        ]
    )
    assert cli._load(args).allow_insecure_http is True
    assert (
        "--allow-insecure-http"
        in cli.build_parser()._subparsers._group_actions[0].choices["run"].format_help()
    )

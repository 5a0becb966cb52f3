"""``meter-bridge``: run the bridge service, check its Odoo access, or read a meter."""

import argparse
import logging
import os
import signal
import sys

from .config import CONFIG_ENV, SPEC, ConfigError, load_settings

PROG = "meter-bridge"

DESCRIPTION = """\
SmartPM Prepay meter bridge: takes meter jobs (credit, disconnect, readings, ...) from Odoo
and executes them on the meters over DLMS/COSEM.

commands:
  run      run the service until stopped (SIGTERM or Ctrl-C: finishes running jobs, hands
           back jobs not started, then exits)
  listen   receive the meters' DLMS pushes (DataNotification) on --listen HOST:PORT and
           hand them to Odoo, which checks and decrypts them (meters in push mode)
  check    log in to Odoo with the configured settings and report whether it works
  read     talk to one meter directly, without Odoo (see: meter-bridge read --help)
"""

EPILOG_TEMPLATE = """\
Settings come from, lowest priority first: defaults, the config file (--config or
${config_env}), environment variables, command-line options. Config file: INI with a
[meter_bridge] section, or TOML ([meter_bridge] table) if its name ends in .toml; its keys
are the names in the first column.

{table}

Example:
  export MB_ODOO_URL=https://odoo.example.com MB_ODOO_DB=smartpm
  export MB_ODOO_LOGIN=bridge@example.com MB_ODOO_API_KEY=...   # Odoo: Preferences > API keys
  meter-bridge check && meter-bridge run --concurrency 16
"""


def _settings_table():
    rows = []
    for key, env, _typ, default, help_text in SPEC:
        if help_text is None:
            continue
        shown = "required" if default is None else (f"default {default}" if default != "" else "")
        rows.append(f"  {key:<18} {env:<22} {shown}".rstrip())
        rows.append(f"      {help_text}")
    return "\n".join(rows)


def _add_settings_options(parser):
    parser.add_argument("--config", metavar="FILE", help=f"config file (or ${CONFIG_ENV})")
    opts = parser.add_argument_group("settings (override file and environment)")
    opts.add_argument("--odoo-url", dest="odoo_url", metavar="URL")
    opts.add_argument(
        "--allow-insecure-http",
        dest="allow_insecure_http",
        action="store_true",
        default=None,
        help="accept a plain http:// Odoo URL on another host than loopback (lab only)",
    )
    opts.add_argument("--db", metavar="NAME")
    opts.add_argument("--login", metavar="LOGIN")
    opts.add_argument(
        "--api-key",
        dest="api_key",
        metavar="KEY",
        help="visible in the process list: prefer MB_ODOO_API_KEY",
    )
    opts.add_argument("--bridge-id", dest="bridge_id", metavar="ID")
    opts.add_argument("--concurrency", type=int, metavar="N")
    opts.add_argument("--prefetch", type=int, metavar="N")
    opts.add_argument(
        "--credit-lane",
        dest="credit_lane",
        type=int,
        metavar="N",
        help="workers above --concurrency that only credit jobs use (default 2)",
    )
    opts.add_argument("--batch-size", dest="batch_size", type=int, metavar="N")
    opts.add_argument("--poll-interval", dest="poll_interval", type=float, metavar="S")
    opts.add_argument("--lease", dest="lease_seconds", type=int, metavar="S", help="lease seconds")
    opts.add_argument(
        "--grace", dest="grace_seconds", type=float, metavar="S", help="seconds allowed on stop"
    )
    opts.add_argument("--log-level", dest="log_level", metavar="LEVEL")
    opts.add_argument("--log-format", dest="log_format", choices=["json", "text"])
    # Test hook: a fake executor "module:function" instead of the DLMS one.
    opts.add_argument("--executor", help=argparse.SUPPRESS)


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG_TEMPLATE.replace("${config_env}", "$" + CONFIG_ENV).format(
            table=_settings_table()
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="{run,listen,check,read}")
    for name, help_text in (
        ("run", "run the service"),
        ("listen", "receive meters' pushes"),
        ("check", "test the Odoo login"),
    ):
        p = sub.add_parser(
            name,
            help=help_text,
            epilog=parser.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            description=DESCRIPTION.split("\n\n")[0],
        )
        _add_settings_options(p)
        if name == "listen":
            p.add_argument(
                "--listen",
                default="0.0.0.0:4059",
                metavar="HOST:PORT",
                help="address the meters connect to (default 0.0.0.0:4059, the DLMS/COSEM "
                "port); several listeners may share one address behind a TCP load balancer",
            )
    sub.add_parser("read", help="read a meter directly (own options)", add_help=False)
    return parser


def _load(args):
    overrides = {
        key: getattr(args, key, None) for key, *_ in SPEC if getattr(args, key, None) is not None
    }
    return load_settings(config_path=args.config, overrides=overrides)


def _config_error(exc):
    print(f"{PROG}: configuration error:", file=sys.stderr)
    for line in str(exc).splitlines():
        print(f"  - {line}", file=sys.stderr)
    print(
        f"Run '{PROG} run --help' for the settings and their environment variables.",
        file=sys.stderr,
    )
    return 2


def cmd_run(args):
    from .log import event, setup_logging
    from .service import (
        GIL_SWITCH_INTERVAL,
        GIL_SWITCH_MIN_CONCURRENCY,
        BridgeService,
        load_executor,
    )

    try:
        settings = _load(args)
    except ConfigError as exc:
        return _config_error(exc)
    setup_logging(settings.log_level, settings.log_format)
    try:
        executor = load_executor(settings.executor)
    except (ImportError, AttributeError) as exc:
        print(
            f"{PROG}: cannot load the job executor "
            f"{settings.executor or 'meter_bridge.executors:execute_job'}: {exc}",
            file=sys.stderr,
        )
        return 2
    service = BridgeService(settings, executor=executor)
    # This process is the bridge's own: its worker threads share one GIL (see the constant).
    # A few threads (a vending bridge) keep CPython's default: no storm to calm there, and
    # the loop thread never waits longer for a worker's CPU burst.
    if settings.concurrency >= GIL_SWITCH_MIN_CONCURRENCY:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    signal.signal(signal.SIGTERM, service.signal_handler)
    signal.signal(signal.SIGINT, service.signal_handler)
    code = service.run()
    if service.abandoned:
        # Worker threads stuck on a meter would block interpreter exit; Odoo re-runs their
        # jobs when the leases expire.
        event(
            logging.getLogger("meter_bridge.cli"),
            logging.WARNING,
            "exit_abandoning_jobs",
            count=service.abandoned,
        )
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def cmd_listen(args):
    from .listener import run
    from .log import setup_logging

    try:
        settings = _load(args)
    except ConfigError as exc:
        return _config_error(exc)
    host, _, port = args.listen.rpartition(":")
    if not port.isdigit():
        print(f"{PROG}: --listen must be HOST:PORT, not {args.listen!r}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_format)
    return run(settings, args.listen)


def cmd_check(args):
    from .odoo_client import OdooClient, OdooError, OdooUnreachable

    try:
        settings = _load(args)
    except ConfigError as exc:
        return _config_error(exc)
    client = OdooClient(
        settings.odoo_url,
        settings.db,
        settings.login,
        settings.api_key,
        timeout=settings.rpc_timeout,
    )
    try:
        uid = client.authenticate()
        print(f"login ok: {settings.login} is uid {uid} on {settings.odoo_url} db {settings.db}")
        due = client.wait_for_jobs(0)
        print(f"job queue access ok (jobs due now: {'yes' if due else 'no'})")
    except OdooUnreachable as exc:
        print(f"{PROG}: Odoo unreachable: {exc}", file=sys.stderr)
        return 1
    except OdooError as exc:
        print(f"{PROG}: Odoo refused: {exc.message} ({exc.name or 'error'})", file=sys.stderr)
        return 1
    return 0


def cmd_read(argv):
    try:
        from .cli_read import main_read
    except ImportError as exc:
        print(
            f"{PROG} read: the meter reading tool is not available in this installation ({exc})",
            file=sys.stderr,
        )
        return 2
    return main_read(argv)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "read":
        # Its own parser owns every option after "read".
        return cmd_read(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "listen":
        return cmd_listen(args)
    if args.command == "check":
        return cmd_check(args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())

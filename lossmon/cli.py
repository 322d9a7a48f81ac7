"""The `lossmon` command: watch, check, demo.

Heavy imports (Textual, TensorFlow) happen inside the subcommand that needs
them, so `lossmon check` starts fast and never loads TensorFlow.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lossmon import __version__
from lossmon.detect import config as detector_config

EXIT_OK = 0
EXIT_ALERT = 1
EXIT_USAGE = 2

SEVERITIES = ("info", "warning", "critical")


class UsageError(Exception):
    """A bad argument or unreadable input: exit 2 with a clear message."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lossmon", description="A live training monitor for the terminal.")
    parser.add_argument("--version", action="version", version=f"lossmon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    watch = sub.add_parser("watch", help="tail run files and show live curves and alerts")
    watch.add_argument("runs", nargs="+", metavar="RUN", help="run file(s) written by LossmonCallback")
    watch.add_argument("--poll", action="store_true", help="poll the file instead of using file events (NFS, sshfs)")
    watch.add_argument("--poll-interval", type=float, default=2.0, metavar="S", help="seconds between safety-net polls (default 2)")
    watch.add_argument("--plain", action="store_true", help="print incidents and progress as plain text, no screen (automatic when stdout is not a terminal)")
    watch.add_argument(
        "--on-alert",
        metavar="CMD",
        help=(
            "run CMD (through the shell) once per incident as it opens and once more if it turns critical, "
            "with the incident as JSON on its stdin; at most 4 at once, the rest queue"
        ),
    )
    watch.add_argument("--bell", action="store_true", help="ring the terminal bell when an incident opens critical or turns critical")
    watch.add_argument("--no-color", action="store_true", help="no colours (also when the NO_COLOR variable is set)")
    detector_config.add_arguments(watch)

    check = sub.add_parser(
        "check",
        help="run the detectors over run files, no screen",
        description=(
            "Run the detectors over run files and print their incidents, root causes first. "
            "Exit 0 when nothing fails --fail-on, 1 when something does: an incident that reached "
            "CRITICAL at any time (a NaN that recovered still counts), or one at or above --fail-on "
            "still active when the file ends; a symptom counts only through its cause. "
            "Exit 2 on a usage error or an unreadable file."
        ),
    )
    check.add_argument("runs", nargs="+", metavar="RUN", help="run file(s) written by LossmonCallback")
    check.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    check.add_argument(
        "--fail-on",
        choices=("warning", "critical"),
        default="warning",
        help=(
            "exit 1 when an incident reached CRITICAL at any time, or one at or above this severity is "
            "still active at the end (default warning); a warning that came and went does not fail"
        ),
    )
    detector_config.add_arguments(check)

    demo = sub.add_parser("demo", help="train a small Keras model with a problem and watch it live")
    demo.add_argument("--scenario", default="high_lr", help="which scenario to train (default high_lr)")
    demo.add_argument("--out", type=Path, help="run file to write (default: a new temporary directory)")
    demo.add_argument("--pace", type=float, default=0.05, metavar="S", help="seconds to pause per batch (default 0.05)")
    demo.add_argument("--list", action="store_true", help="list the scenarios and exit")
    return parser


def _check_paths(paths: list[str]) -> list[Path]:
    out = []
    for name in paths:
        path = Path(name)
        if not path.exists():
            raise UsageError(f"run file not found: {name}")
        if path.is_dir():
            raise UsageError(f"{name} is a directory, not a run file")
        out.append(path)
    return out


def _engine(args: argparse.Namespace):
    """The detectors configured by --config, --disable and --set."""
    try:
        return detector_config.engine_from_args(args)
    except detector_config.ConfigError as exc:
        raise UsageError(str(exc)) from None


def cmd_check(args: argparse.Namespace) -> int:
    import time

    from lossmon.detect import Severity
    from lossmon.detectors.stalled import ticks
    from lossmon.monitor import Monitor
    from lossmon.show.report import as_json, as_text

    monitor = Monitor(_check_paths(args.runs), engine=_engine(args))
    monitor.read_to_end()
    for tick in ticks(monitor.store.runs.values(), time.time()):  # runs that went silent
        monitor.engine.feed(tick)
    for source in monitor.sources:
        if source.status == "error":
            raise UsageError(f"cannot read {source.path}: {source.error}")
        if source.status == "waiting":
            raise UsageError(f"run file disappeared: {source.path}")
    if monitor.records == 0:
        detail = f" ({monitor.malformed} malformed lines)" if monitor.malformed else ""
        raise UsageError(f"no lossmon records in {', '.join(args.runs)}{detail}")
    engine = monitor.engine
    runs = list(monitor.store.runs.values())
    fail_on = Severity(args.fail_on)
    failing = engine.failing(fail_on)
    code = EXIT_ALERT if engine.fails(fail_on) else EXIT_OK
    if args.format == "json":
        verdict = {
            "fail_on": fail_on.value,
            "exit": code,
            "failing": [alert.id for alert in failing],
            "dropped": engine.dropped,
            "dropped_critical": engine.dropped_critical,
        }
        print(as_json(engine.alerts, runs, monitor.malformed, verdict))
    else:
        print(as_text(engine.alerts, runs, monitor.malformed, _verdict_line(code, failing, fail_on, engine.dropped)))
    return code


def _verdict_line(code: int, failing: list, fail_on, dropped: int) -> str:
    more = f" ({dropped} older incidents not listed)" if dropped else ""
    if code == EXIT_OK:
        return f"check passes at --fail-on {fail_on.value}: nothing critical, nothing at {fail_on.value} still active{more}"
    names = ", ".join(alert.detector for alert in failing) or "a critical incident no longer listed"
    return f"check fails at --fail-on {fail_on.value}: {names}{more}"


def cmd_watch(args: argparse.Namespace) -> int:
    import os

    from lossmon.show.notify import AlertNotifier
    from lossmon.show.targets import NoRunFiles, expand_targets

    try:
        paths = expand_targets(args.runs)
    except NoRunFiles as exc:
        raise UsageError(str(exc)) from None
    notifier = AlertNotifier(args.on_alert, bell=args.bell)
    if args.plain or not sys.stdout.isatty():
        from lossmon.show.plain import watch_plain

        return watch_plain(paths, engine=_engine(args), notifier=notifier, poll_interval=min(args.poll_interval, 1.0))
    if args.no_color:
        os.environ["NO_COLOR"] = "1"  # Textual reads it when the app starts
    from lossmon.show.app import WatchApp

    app = WatchApp(paths, engine=_engine(args), polling_only=True if args.poll else None, poll_interval=args.poll_interval, notifier=notifier)
    app.run()
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from lossmon import demo

    if args.list:
        print(demo.listing())
        return EXIT_OK
    try:
        return demo.run_demo(args.scenario, args.out, args.pace)
    except demo.DemoError as exc:
        raise UsageError(str(exc)) from None


COMMANDS = {"watch": cmd_watch, "check": cmd_check, "demo": cmd_demo}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"lossmon: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130

"""The `lossmon` command: watch, check, demo.

Heavy imports (Textual, TensorFlow) happen inside the subcommand that needs
them, so `lossmon check` starts fast and never loads TensorFlow.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path

from lossmon import __version__
from lossmon.detect import config as detector_config
from lossmon.read.rowlines import NotRegularFile, open_regular
from lossmon.show.safe import escape

EXIT_OK = 0
EXIT_ALERT = 1
EXIT_USAGE = 2
EXIT_CRASH = 3  # watch's screen failed (Textual printed why)
EXIT_PIPE = 128 + 13  # stdout was closed (`| head -1`): as a tool killed by SIGPIPE

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
    watch.add_argument("--settle", type=float, default=10.0, metavar="S", help="with --plain: exit once every run has ended and no file has grown for S seconds (default 10)")
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


def describe_os_error(name: object, exc: OSError) -> str:
    """What went wrong opening `name`, in words (never a traceback)."""
    if isinstance(exc, FileNotFoundError):
        return f"run file not found: {name}"
    if isinstance(exc, PermissionError):
        return f"permission denied: {name}"
    if exc.errno == errno.ELOOP:
        return f"{name}: too many levels of symbolic links (a symlink loop?)"
    if exc.errno == errno.ENAMETOOLONG:
        return f"{name}: file name too long"
    if isinstance(exc, NotADirectoryError):
        return f"{name}: a parent of this path is not a directory"
    return f"cannot read {name}: {exc.strerror or exc}"


def _check_paths(paths: list[str]) -> list[Path]:
    """The run files to read: each must be a regular file we can open; the
    same file named twice (another spelling, a link) is read once."""
    out = []
    seen: set[tuple[int, int]] = set()
    for name in paths:
        try:
            fd = open_regular(name)
        except IsADirectoryError:
            raise UsageError(f"{name} is a directory, not a run file") from None
        except NotRegularFile:
            raise UsageError(f"{name} is not a regular file (a FIFO, socket or device)") from None
        except OSError as exc:
            raise UsageError(describe_os_error(name, exc)) from None
        except ValueError as exc:  # a NUL byte in the name
            raise UsageError(f"{name}: {exc}") from None
        try:
            info = os.fstat(fd)
        finally:
            os.close(fd)
        if (info.st_dev, info.st_ino) in seen:
            continue
        seen.add((info.st_dev, info.st_ino))
        out.append(Path(name))
    return out


def _engine(args: argparse.Namespace):
    """The detectors configured by --config, --disable and --set."""
    try:
        return detector_config.engine_from_args(args)
    except detector_config.ConfigError as exc:
        raise UsageError(str(exc)) from None


def cmd_check(args: argparse.Namespace) -> int:
    import json
    import time

    from lossmon.detect import Severity
    from lossmon.detectors.stalled import ticks
    from lossmon.monitor import Monitor
    from lossmon.show.report import as_json, as_text
    from lossmon.show.safe import safe_json, safe_lines

    monitor = Monitor(_check_paths(args.runs), engine=_engine(args), clock=time.time)
    monitor.read_to_end()
    for tick in ticks(monitor.store.runs.values(), time.time()):  # runs that went silent
        monitor.note_alerts(monitor.engine.feed(tick))
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
    lines, extra = _bounds_met(monitor)
    if args.format == "json":
        verdict = {
            "fail_on": fail_on.value,
            "exit": code,
            "failing": [alert.id for alert in failing],
            "dropped": engine.dropped,
            "dropped_critical": engine.dropped_critical,
        }
        document = as_json(engine.alerts, runs, monitor.malformed, verdict)
        if extra:
            document = json.dumps({**json.loads(document), **extra}, indent=2, ensure_ascii=False)
        print(safe_json(document))
    else:
        text = as_text(engine.alerts, runs, monitor.malformed, _verdict_line(code, failing, fail_on, engine.dropped))
        print(safe_lines("\n".join([text, *lines])))
    return code


def _verdict_line(code: int, failing: list, fail_on, dropped: int) -> str:
    more = f" ({dropped} older incidents not listed)" if dropped else ""
    if code == EXIT_OK:
        return f"check passes at --fail-on {fail_on.value}: nothing critical, nothing at {fail_on.value} still active{more}"
    names = ", ".join(alert.detector for alert in failing) or "a critical incident no longer listed"
    return f"check fails at --fail-on {fail_on.value}: {names}{more}"


def _bounds_met(monitor) -> tuple[list[str], dict]:
    """What the memory budget left out of the report, as text lines and
    JSON keys: runs judged and then dropped, values of names beyond the cap."""
    from lossmon.model.run import MAX_NAMES

    store, runs = monitor.store, list(monitor.store.runs.values())
    lines: list[str] = []
    extra: dict = {}
    if store.evicted_runs:  # judged, then dropped from memory: say so
        extra.update(runs_judged=len(runs) + store.evicted_runs, runs_dropped=store.evicted_runs, records=monitor.records)
        lines.append(
            f"{len(runs) + store.evicted_runs} runs and {monitor.records} records judged in all; the "
            f"{store.evicted_runs} oldest runs ({store.evicted_records} records) are not listed above "
            f"(at most {store.max_runs} runs are kept in memory)"
        )
    listed = {id(alert) for alert in monitor.engine.alerts}
    if monitor.worst is not None and id(monitor.worst[1]) not in listed:  # fell off the engine's list
        gone = monitor.worst[1]
        extra["worst_unlisted"] = {"detector": gone.detector, "run": gone.run, "step": gone.step, "severity": gone.severity.value}
        lines.append(
            f"the most severe alert raised, {gone.severity.value} {gone.detector} in run {gone.run} at step "
            f"{gone.step}, is not listed above (only the newest alerts are kept); the exit status counts it"
        )
    capped = {run.id: run.names_dropped for run in runs if run.names_dropped}
    if capped:
        extra["values_not_kept"] = capped
        for run_id, count in capped.items():
            lines.append(f"run {run_id}: {count} values not kept (names beyond the first {MAX_NAMES} of a kind)")
    return lines, extra


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

        return watch_plain(paths, engine=_engine(args), notifier=notifier, poll_interval=min(args.poll_interval, 1.0), settle=max(args.settle, 0.0))
    if args.no_color:
        os.environ["NO_COLOR"] = "1"  # Textual reads it when the app starts
    from lossmon.show.app import WatchApp

    app = WatchApp(paths, engine=_engine(args), polling_only=True if args.poll else None, poll_interval=args.poll_interval, notifier=notifier)
    app.run()
    return EXIT_CRASH if app.return_code else EXIT_OK


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
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a full disk or a closed pipe is found here, not at exit
        return code
    except UsageError as exc:
        _say_error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _drop_stdout()
        return EXIT_PIPE
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EIO, errno.EFBIG, errno.EDQUOT):  # writing the output
            _drop_stdout()
            _say_error(f"cannot write the output: {exc.strerror or exc}")
            return EXIT_USAGE
        raise


def _say_error(message: str) -> None:
    try:
        print(f"lossmon: {escape(message)}", file=sys.stderr)
    except OSError:
        pass


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush at exit
    does not fail again with a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass

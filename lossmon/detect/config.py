"""Detector configuration: which detectors run and with which options.

Three sources, later ones winning: a config file (`--config FILE`, TOML or
JSON), then `--disable ID` and `--set ID.OPTION=VALUE` flags. The file:

    [detectors]
    disable = ["plateau"]

    [detectors.divergence]
    factor = 3.0

(JSON: {"detectors": {"disable": [...], "divergence": {"factor": 3.0}}}).
Unknown ids and options are errors with the valid names in the message, so
a typo never silently leaves a default in place.
"""

from __future__ import annotations

import argparse
import errno
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping

from lossmon.detect.base import Detector


class ConfigError(ValueError):
    """A configuration that cannot be applied; the message says why."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The detector flags shared by `lossmon check` and `lossmon watch`."""
    parser.add_argument("--config", metavar="FILE", help="detector configuration file (TOML or JSON)")
    parser.add_argument("--disable", action="append", default=[], metavar="ID", help="switch a detector off (repeatable)")
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="ID.OPTION=VALUE",
        help="set a detector option, e.g. divergence.factor=3 (repeatable)",
    )


def parse_value(text: str) -> Any:
    """A flag value: JSON when it parses (3, 0.5, true, ["a"]), else the string."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        lowered = text.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        return text


def load_file(path: str | Path) -> dict[str, Any]:
    """The `detectors` table of a TOML or JSON file."""
    path = Path(path)
    try:
        raw = _read_config(path)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(raw)
        except RecursionError:
            raise ConfigError(f"{path} is nested too deeply") from None
        except ValueError as exc:
            raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    else:
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # a dependency on Python 3.10
            import tomli as tomllib
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except RecursionError:
            raise ConfigError(f"{path} is nested too deeply") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table at the top level")
    section = data.get("detectors", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [detectors] must be a table")
    return section


MAX_CONFIG_BYTES = 1024 * 1024


def _read_config(path: Path) -> bytes:
    """The file's bytes: a regular file of at most MAX_CONFIG_BYTES, opened
    without blocking (a FIFO is refused, not waited on)."""
    from lossmon.read.rowlines import open_regular

    fd = open_regular(path)
    try:
        raw = os.pread(fd, MAX_CONFIG_BYTES + 1, 0)
    finally:
        os.close(fd)
    if len(raw) > MAX_CONFIG_BYTES:
        raise OSError(errno.EFBIG, f"larger than {MAX_CONFIG_BYTES} bytes")
    return raw


def options_of(cls: type[Detector]) -> list[str]:
    """The keyword options a detector class accepts."""
    params = inspect.signature(cls.__init__).parameters
    return [name for name, p in params.items() if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def resolve(
    available: Mapping[str, type[Detector]],
    file_section: Mapping[str, Any] | None = None,
    disable: list[str] | tuple[str, ...] = (),
    settings: list[str] | tuple[str, ...] = (),
) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """(options per id, disabled ids) from a file section and flags."""
    options: dict[str, dict[str, Any]] = {}
    disabled: set[str] = set()

    def known(det_id: str, where: str) -> type[Detector]:
        cls = available.get(det_id)
        if cls is None:
            raise ConfigError(f"{where}: unknown detector {det_id!r}; known: {', '.join(sorted(available))}")
        return cls

    def put(det_id: str, option: str, value: Any, where: str) -> None:
        cls = known(det_id, where)
        names = options_of(cls)
        if option not in names:
            raise ConfigError(f"{where}: {det_id} has no option {option!r}; its options: {', '.join(names) or 'none'}")
        options.setdefault(det_id, {})[option] = value

    for key, value in (file_section or {}).items():
        if key == "disable":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError("config: detectors.disable must be a list of detector ids")
            for det_id in value:
                known(det_id, "config")
                disabled.add(det_id)
        elif isinstance(value, dict):
            for option, setting in value.items():
                put(key, str(option), setting, "config")
        else:
            raise ConfigError(f"config: detectors.{key} must be a table of options")
    for det_id in disable:
        known(det_id, "--disable")
        disabled.add(det_id)
    for item in settings:
        name, eq, text = item.partition("=")
        det_id, dot, option = name.strip().partition(".")
        if not eq or not dot or not det_id or not option:
            raise ConfigError(f"--set {item!r}: expected ID.OPTION=VALUE, e.g. divergence.factor=3")
        put(det_id, option.strip(), parse_value(text.strip()), "--set")
    for det_id, opts in options.items():
        try:
            available[det_id](**opts)
        except Exception as exc:
            raise ConfigError(f"options for {det_id} rejected: {exc}") from None
    return options, disabled


def engine_from_args(args: argparse.Namespace, available: Mapping[str, type[Detector]] | None = None):
    """The Engine that `check` and `watch` use, configured from their flags."""
    from lossmon.detect.engine import Engine
    from lossmon.detect.registry import available_detectors

    detectors = dict(available) if available is not None else available_detectors()
    section = load_file(args.config) if getattr(args, "config", None) else None
    options, disabled = resolve(detectors, section, getattr(args, "disable", []) or [], getattr(args, "settings", []) or [])
    return Engine(detectors, options, disabled)

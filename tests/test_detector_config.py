"""Detector configuration from a file and from `check`/`watch` flags."""

from __future__ import annotations

import json

import pytest

from lossmon.cli import build_parser, main
from lossmon.detect.config import ConfigError, engine_from_args, load_file, parse_value, resolve
from lossmon.detectors import BUILTIN

from records import training, write


def test_values_parse_as_json_else_text() -> None:
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5
    assert parse_value("true") is True and parse_value("False") is False
    assert parse_value('["accuracy"]') == ["accuracy"] and parse_value("val_loss") == "val_loss"


def test_file_then_flags_later_ones_win(tmp_path) -> None:
    path = tmp_path / "lossmon.toml"
    path.write_text('[detectors]\ndisable = ["plateau"]\n\n[detectors.divergence]\nfactor = 3.0\nwindow = 7\n')
    options, disabled = resolve(BUILTIN, load_file(path), ["spike"], ["divergence.factor=4", "overfitting.monitor=val_mae"])
    assert disabled == {"plateau", "spike"}
    assert options == {"divergence": {"factor": 4, "window": 7}, "overfitting": {"monitor": "val_mae"}}


def test_json_config_file(tmp_path) -> None:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"detectors": {"disable": "stalled", "spike": {"ratio": 5}}}))
    assert resolve(BUILTIN, load_file(path)) == ({"spike": {"ratio": 5}}, {"stalled"})


@pytest.mark.parametrize(
    ("section", "disable", "settings", "message"),
    [
        ({}, ["nope"], [], "unknown detector 'nope'"),
        ({}, [], ["divergence.fator=3"], "divergence has no option 'fator'; its options: monitor, factor"),
        ({}, [], ["divergence=3"], "expected ID.OPTION=VALUE"),
        ({"spike": 3}, [], [], "detectors.spike must be a table"),
        ({}, [], ["divergence.window=many"], "options for divergence rejected"),
    ],
)
def test_mistakes_are_errors_that_name_the_valid_choices(section, disable, settings, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        resolve(BUILTIN, section, disable, settings)


def test_watch_and_check_accept_the_flags(tmp_path) -> None:
    parser = build_parser()
    for command in ("watch", "check"):
        args = parser.parse_args([command, "run.jsonl", "--disable", "plateau", "--set", "spike.ratio=6"])
        engine = engine_from_args(args)
        assert "plateau" not in engine.classes and engine.options["spike"] == {"ratio": 6}


def test_check_honours_disable_set_and_config(tmp_path, capsys) -> None:
    losses = [0.69, 0.6, 0.55, 0.5] + [0.5 * 1.6**i for i in range(1, 6)] + [5.0] * 20
    path = write(tmp_path / "div.jsonl", training(losses, lr=1.0))

    def detectors(*flags: str) -> tuple[int, set[str]]:
        code = main(["check", str(path), "--format", "json", *flags])
        return code, {a["detector"] for a in json.loads(capsys.readouterr().out)["alerts"]}

    code, found = detectors()
    assert code == 1 and "divergence" in found
    _, found = detectors("--disable", "divergence")
    assert "divergence" not in found
    _, found = detectors("--set", "divergence.critical_factor=1000", "--set", "divergence.factor=1000")
    assert "divergence" not in found
    config = tmp_path / "quiet.toml"
    config.write_text('[detectors]\ndisable = ["divergence"]\n')
    _, found = detectors("--config", str(config))
    assert "divergence" not in found


def test_check_reports_bad_config_as_usage_error(tmp_path, capsys) -> None:
    path = write(tmp_path / "ok.jsonl", training([0.5] * 20))
    assert main(["check", str(path), "--set", "nope.x=1"]) == 2
    assert "unknown detector 'nope'" in capsys.readouterr().err
    assert main(["check", str(path), "--config", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read config" in capsys.readouterr().err


def test_options_a_recalibration_replaced_still_load() -> None:
    """oscillation's `alternation` and chance_level's `min_drop`/`warmup`
    gave way to better rules; a config that sets them still loads."""
    from lossmon.detect.config import resolve
    from lossmon.detectors import BUILTIN

    options, _ = resolve(BUILTIN, {"oscillation": {"alternation": 0.6}, "chance_level": {"min_drop": 0.1, "warmup": 3}})
    BUILTIN["oscillation"](**options["oscillation"])
    BUILTIN["chance_level"](**options["chance_level"])

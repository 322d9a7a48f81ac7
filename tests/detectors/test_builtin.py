"""What all four detectors promise: registry, options, and never raising."""

from __future__ import annotations

import inspect
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossmon.detect.base import Detector
from lossmon.detectors import BUILTIN, Divergence, NonFinite, Overfitting, Plateau
from lossmon.format import Record

from series import run


def test_registry_ids_are_the_public_ones() -> None:
    assert {"nonfinite": NonFinite, "divergence": Divergence, "plateau": Plateau, "overfitting": Overfitting}.items() <= BUILTIN.items()
    mine = {"oscillation", "spike", "slow_convergence", "chance_level", "stalled"}
    assert mine <= set(BUILTIN)
    assert all(cls.id == key for key, cls in BUILTIN.items())


@pytest.mark.parametrize("cls", list(BUILTIN.values()))
def test_detector_class_shape(cls: type[Detector]) -> None:
    assert issubclass(cls, Detector)
    assert cls.title and cls.__doc__
    params = inspect.signature(cls.__init__).parameters
    for name, p in params.items():
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            assert p.default is not inspect.Parameter.empty, f"{cls.id}.{name} has no default"
    assert list(cls().observe(Record("end", "r", 0))) == []


numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, -1.0, 0.693, 1e308]),
)
value_dicts = st.dictionaries(
    st.sampled_from(["loss", "val_loss", "accuracy", "lr", "val_accuracy", "x"]), numbers, max_size=5
)
headers = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {
            "optimizer": st.one_of(
                st.none(),
                st.text(max_size=5),
                st.fixed_dictionaries(
                    {"class": st.one_of(st.none(), st.sampled_from(["Adam", "SGD", "Weird"])), "learning_rate": numbers}
                ),
            ),
            "loss": st.one_of(st.none(), st.just("binary_crossentropy"), st.integers()),
            "model": st.one_of(st.none(), st.just({"layers": [{"units": 0}, None, {"units": True}]})),
        }
    ),
)
records = st.lists(
    st.one_of(
        st.builds(
            Record,
            kind=st.sampled_from(["batch", "epoch"]),
            run=st.just("r"),
            step=st.integers(0, 50),
            epoch=st.one_of(st.none(), st.integers(0, 10)),
            values=value_dicts,
        ),
        st.builds(lambda d: Record("header", "r", 0, data=d), headers),
        st.just(Record("end", "r", 50, data={"status": "error"})),
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(records)
def test_no_detector_raises_on_garbage(stream: list[Record]) -> None:
    for cls in BUILTIN.values():
        run(cls(), stream)  # also checks verdict shape and JSON-safe evidence


@pytest.mark.parametrize("cls", list(BUILTIN.values()))
def test_long_clean_stream_with_odd_values(cls: type[Detector]) -> None:
    stream = []
    for i in range(1, 400):
        value = [0.5, math.nan, 0.0, -1.0, 1e300, 0.4][i % 6]
        stream.append(Record("batch", "r", i, i // 40, values={"loss": value}))
        if i % 40 == 0:
            stream.append(Record("epoch", "r", i, i // 40 - 1, values={"loss": value, "val_loss": 0.5}))
    run(cls(), stream)


@pytest.mark.parametrize("cls", list(BUILTIN.values()))
def test_extreme_values_give_json_safe_evidence(cls: type[Detector]) -> None:
    tiny, huge = 1e-300, 1e308
    stream = [Record("batch", "r", i, 0, values={"loss": tiny if i <= 5 else huge}) for i in range(1, 40)]
    train = [huge, huge, huge, -huge, -huge, -huge, -huge, -huge, -huge]
    val = [-huge, huge, huge, huge, huge, huge, huge, huge, huge]  # gap overflows
    stream += [
        Record("epoch", "r", 40 + e, e, values={"loss": train[e], "val_loss": val[e]}) for e in range(len(train))
    ]
    run(cls(), stream)  # run() fails on inf/NaN in evidence


def test_extreme_values_still_give_verdicts() -> None:
    stream = [Record("batch", "r", i, 0, values={"loss": 1e-300 if i <= 5 else 1e308}) for i in range(1, 40)]
    _, finding = run(Divergence(), stream).first_finding()
    assert finding.evidence["ratio"] == "Infinity"
    huge = 1e308
    train = [huge, huge, huge, -huge, -huge, -huge]
    val = [-huge, huge, huge, huge, huge, huge]
    stream = [Record("epoch", "r", e, e, values={"loss": train[e], "val_loss": val[e]}) for e in range(6)]
    _, finding = run(Overfitting(), stream).first_finding()
    assert finding.evidence["gap"] == "Infinity"

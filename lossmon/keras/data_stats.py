"""What the probe batch says about the data: feature scales and labels.

Computed once at train begin with numpy and written in the header under
`data`, so `unscaled_inputs` and `class_imbalance` can judge the data before
the first step. Summaries only: a model with 784 input features gets a few
numbers and its worst features, not 784 entries.
"""

from __future__ import annotations

from typing import Any

import numpy as np

WORST = 3  # how many of the largest-scale features are named
MAX_CLASSES = 256  # integer labels with more distinct values are a regression target
COUNTS_SHOWN = 20  # class counts are listed for at most this many classes


def as_array(value: Any) -> np.ndarray | None:
    """A numeric numpy array, or None for nested or non-numeric data."""
    if value is None or isinstance(value, (dict, list, tuple)):
        return None
    try:
        array = np.asarray(value)
    except Exception:
        return None
    if array.dtype.kind not in "biuf" or array.ndim == 0 or len(array) == 0:
        return None
    return array


def input_stats(x: Any) -> dict[str, Any]:
    """Per-feature scales of the inputs (last axis = features), summarised.

    A feature's scale is its root mean square, sqrt(mean² + std²): a column
    of years (mean 2000, std 10) is as unscaled as one with std 2000.
    """
    array = as_array(x)
    if array is None:
        return {"available": False, "reason": "inputs are not a single numeric array"}
    array = array.astype(np.float64, copy=False)
    columns = array.reshape(-1, array.shape[-1]) if array.ndim > 1 else array.reshape(-1, 1)
    finite = np.isfinite(columns)
    nonfinite = int(columns.size - np.count_nonzero(finite))
    clean = np.where(finite, columns, np.nan)
    with np.errstate(all="ignore"):
        mean = np.nanmean(clean, axis=0)
        std = np.nanstd(clean, axis=0)
    rms = np.sqrt(mean**2 + std**2)
    known = np.isfinite(rms)
    stats: dict[str, Any] = {
        "available": True,
        "rows": int(len(array)),
        "features": int(columns.shape[1]),
        "nonfinite": nonfinite,
        "constant": int(np.count_nonzero(known & (std == 0))),
    }
    if not known.any():
        return stats
    scales = rms[known]
    stats["scale_max"] = float(scales.max())
    stats["scale_median"] = float(np.median(scales))
    stats["scale_min"] = float(scales.min())
    stats["abs_max"] = float(np.nanmax(np.abs(clean)))
    order = np.argsort(np.where(known, rms, -1.0))[::-1][:WORST]
    stats["worst"] = [
        {"index": int(i), "mean": float(mean[i]), "std": float(std[i]), "scale": float(rms[i])}
        for i in order
        if known[i]
    ]
    return stats


def label_stats(y: Any, loss: str | None = None) -> dict[str, Any]:
    """The label distribution: classes and their shares, or a target's range.

    Labels are classes when they are one-hot rows, or integer values with
    few distinct values under a classification loss (any cross-entropy or
    hinge), or at most ten distinct integers whatever the loss.
    """
    array = as_array(y)
    if array is None:
        return {"available": False, "reason": "labels are not a single numeric array"}
    rows = int(len(array))
    values = array.astype(np.float64, copy=False)
    nonfinite = int(values.size - np.count_nonzero(np.isfinite(values)))
    one_hot = (
        values.ndim == 2
        and values.shape[1] > 1
        and nonfinite == 0
        and np.isin(values, (0.0, 1.0)).all()
        and (values.sum(axis=1) == 1).all()
    )
    if one_hot:
        index = np.argmax(values, axis=1)
        classes = int(values.shape[1])
        return _class_stats(rows, index, classes, "one-hot")
    flat = values.reshape(rows, -1)
    if flat.shape[1] == 1 and nonfinite == 0 and np.all(flat == np.rint(flat)):
        distinct = np.unique(flat)
        lossname = (loss or "").lower().replace("_", "")
        classifying = "crossentropy" in lossname or "hinge" in lossname
        if len(distinct) <= 10 or (classifying and len(distinct) <= MAX_CLASSES):
            index = flat[:, 0].astype(np.int64)
            classes = max(int(distinct.max()) + 1, len(distinct)) if distinct.min() >= 0 else len(distinct)
            return _class_stats(rows, index, classes, "sparse")
    finite = values[np.isfinite(values)]
    out: dict[str, Any] = {"available": True, "task": "regression", "rows": rows, "nonfinite": nonfinite}
    if finite.size:
        out.update(mean=float(finite.mean()), std=float(finite.std()), min=float(finite.min()), max=float(finite.max()))
    return out


def _class_stats(rows: int, index: np.ndarray, classes: int, encoding: str) -> dict[str, Any]:
    present, counts = np.unique(index, return_counts=True)
    order = np.argsort(counts)[::-1]
    majority, minority = order[0], order[-1]
    out: dict[str, Any] = {
        "available": True,
        "task": "classification",
        "encoding": encoding,
        "rows": rows,
        "classes": classes,
        "classes_present": int(len(present)),
        "majority_class": int(present[majority]),
        "majority_fraction": float(counts[majority] / rows),
        "minority_class": int(present[minority]),
        "minority_fraction": float(counts[minority] / rows),
        "imbalance_ratio": float(counts[majority] / counts[minority]),
    }
    if len(present) <= COUNTS_SHOWN:
        out["counts"] = {str(int(c)): int(n) for c, n in zip(present, counts)}
    return out

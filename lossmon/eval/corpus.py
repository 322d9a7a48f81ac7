"""`python -m lossmon.eval corpus`: generate the calibration corpus.

Draws `--runs` setups from a `--seed`: about two thirds healthy
(lossmon.eval.space), the rest mutants of those healthy runs, one mistake
each (lossmon.eval.mutations, the operators taken in turn so each gets its
share). Then trains them for real, `--jobs` worker processes at a time,
several runs per process so TensorFlow starts once per worker.

Output, in `--out DIR`: `plan.json` (every setup), and per run
`runs/<id>.jsonl` (the run file, as LossmonCallback writes it) and
`runs/<id>.json` (setup and outcome). A run whose `.json` exists is done:
running the command again resumes where it stopped. Score the corpus with
`python -m lossmon.eval score DIR`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from lossmon.eval.mutations import OPERATORS, mutant
from lossmon.eval.space import Setup, healthy

HEALTHY_SHARE = 2 / 3


def plan(runs: int, seed: int) -> list[Setup]:
    """The corpus's setups, the same for the same `runs` and `seed`."""
    rng = np.random.default_rng(seed)
    n_healthy = max(1, round(runs * HEALTHY_SHARE))
    setups = [healthy(rng, f"h{i:04d}") for i in range(n_healthy)]
    ops = list(OPERATORS)
    k = 0
    for i in range(runs - n_healthy):
        for _ in range(len(ops)):
            op = ops[k % len(ops)]
            k += 1
            parents = [s for s in setups[:n_healthy] if op.applies(s)]
            if parents:
                parent = parents[int(rng.integers(len(parents)))]
                setups.append(mutant(parent, op, rng, f"m{i:04d}"))
                break
        if k % len(ops) == 0:
            rng.shuffle(ops)
    return setups


def _quiet_worker() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the corpus is a CPU corpus
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.get_logger().setLevel("ERROR")
    import absl.logging

    absl.logging.set_verbosity("error")


def train_one(job: tuple[Setup, str]) -> tuple[str, float, str | None]:
    """Train one setup into `runs/`; returns (id, seconds, error)."""
    setup, out = job
    import warnings

    import keras

    from lossmon.eval.train import train

    runs = Path(out) / "runs"
    path = runs / f"{setup['id']}.jsonl"
    path.unlink(missing_ok=True)
    start = time.perf_counter()
    error = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outcome = train(setup, str(path))
    except Exception as exc:  # a setup that cannot train is recorded, not fatal
        error = f"{type(exc).__name__}: {exc}"
        outcome = {"error": error, "trace": traceback.format_exc(limit=3)}
    finally:
        keras.backend.clear_session()
    tmp = runs / f"{setup['id']}.json.tmp"
    tmp.write_text(json.dumps({"setup": setup, "outcome": outcome}, default=float))
    tmp.replace(runs / f"{setup['id']}.json")  # the .json says the run is done
    return setup["id"], time.perf_counter() - start, error


def generate(runs: int, seed: int, out: Path, jobs: int = 2, log: Any = None) -> list[Setup]:
    """Plan the corpus into `out` and train what is not trained yet."""
    log = log or sys.stderr
    out.mkdir(parents=True, exist_ok=True)
    (out / "runs").mkdir(exist_ok=True)
    setups = plan(runs, seed)
    plan_file = out / "plan.json"
    if plan_file.exists():
        old = json.loads(plan_file.read_text())
        if (old.get("runs"), old.get("seed")) != (runs, seed):
            raise SystemExit(f"{out} holds a corpus of {old.get('runs')} runs from seed {old.get('seed')}: use another --out")
    plan_file.write_text(json.dumps({"runs": runs, "seed": seed, "setups": setups}, indent=1))
    todo = [s for s in setups if not (out / "runs" / f"{s['id']}.json").exists()]
    print(f"{len(setups)} runs planned, {len(setups) - len(todo)} done, {len(todo)} to train with {jobs} jobs", file=log, flush=True)
    start = time.perf_counter()
    jobs_list = [(s, str(out)) for s in todo]
    if not jobs_list:
        return setups
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(max(1, jobs), initializer=_quiet_worker) as pool:
        for n, (run_id, seconds, error) in enumerate(pool.imap_unordered(train_one, jobs_list), 1):
            status = f"ERROR {error}" if error else f"{seconds:.1f} s"
            elapsed = time.perf_counter() - start
            print(f"[{n}/{len(todo)} {elapsed:.0f} s] {run_id}: {status}", file=log, flush=True)
    return setups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lossmon.eval corpus", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300, help="runs to draw (default 300, two thirds healthy)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="corpus directory (resumed if it exists)")
    parser.add_argument("--jobs", type=int, default=2, help="training processes at once (default 2)")
    parser.add_argument("--list", action="store_true", help="print the plan as JSON lines and train nothing")
    args = parser.parse_args(argv)
    if args.list:
        for s in plan(args.runs, args.seed):
            print(json.dumps(s))
        return 0
    generate(args.runs, args.seed, args.out, args.jobs)
    print(f"corpus in {args.out}; score it with: python -m lossmon.eval score {args.out}")
    return 0

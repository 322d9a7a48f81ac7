"""Measuring the detectors on real training runs.

Two suites, one command (`python -m lossmon.eval`):

- the scenario suite (`lossmon.eval.scenarios`, the default): the two dozen
  demo runs, each with the detectors it must raise;
- the calibration corpus (`corpus` to generate, `score` to judge): hundreds
  of runs drawn at random from setups people train, healthy ones and
  mutants of them, labelled by their outcome, not by intention.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Dispatch to `corpus`, `score` or (default) the scenario suite."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "corpus":
        from lossmon.eval.corpus import main as corpus_main

        return corpus_main(argv[1:])
    if argv and argv[0] == "score":
        from lossmon.eval.score import main as score_main

        return score_main(argv[1:])
    from lossmon.eval.scenarios import main as scenarios_main

    return scenarios_main(argv)

"""`python -m lossmon.scenarios NAME PATH`: write one demo run to PATH."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    # Import here, so --help and bad names answer without loading Keras.
    from lossmon.scenarios import SCENARIOS, run

    parser = argparse.ArgumentParser(
        prog="python -m lossmon.scenarios",
        description="Train a small real Keras model and record it to a run file.",
        epilog="scenarios: "
        + "; ".join(f"{name}: {text}" for name, text in SCENARIOS.items()),
    )
    parser.add_argument("name", choices=sorted(SCENARIOS), help="which scenario")
    parser.add_argument("path", help="run file to append to")
    parser.add_argument("--epochs", type=int, default=None, help="override the epochs")
    parser.add_argument(
        "--pace", type=float, default=0.0, help="seconds to sleep after each batch"
    )
    args = parser.parse_args(argv)
    # TensorFlow prints its C++ chatter at import; quiet it unless asked.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    run(args.name, args.path, epochs=args.epochs, pace=args.pace)
    print(f"{args.name}: run written to {args.path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

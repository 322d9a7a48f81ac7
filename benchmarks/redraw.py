"""Redraw cost is independent of run length: 100 vs 1,000,000 records.

The real app runs headless at 160x48 with a run of each length loaded; then
single records continuing each run's own curve are appended, and each
redraw they cause is timed from its start to the paint of the refresh that
follows (see _timed_app.py; the app paces redraws while records stream,
which is not part of their cost).
The short run is the baseline. Target: the long run's median within 1.5x.
Usage: python benchmarks/redraw.py [--records N] [--samples K]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import batch_record, bench_dir, emit, machine, median, write_run  # noqa: E402
from _timed_app import timed_app_class  # noqa: E402
from lossmon.record import RunFileWriter  # noqa: E402


async def redraw_times(path: Path, first_step: int, samples: int, steps_per_epoch: int) -> list[float]:
    app = timed_app_class()([path], poll_interval=0.5)
    lines = sum(1 for _ in open(path, "rb"))
    writer = RunFileWriter(path)
    rng = random.Random(1)
    async with app.run_test(size=(160, 48)) as pilot:
        while app.monitor.records < lines:
            await asyncio.sleep(0.01)
        await pilot.pause(0.5)
        app.draw_costs.clear()
        for i in range(samples):
            step = first_step + i
            before = len(app.draw_costs)
            writer.write(batch_record(step, steps_per_epoch, rng))  # the run going on as it was
            while len(app.draw_costs) == before:
                await asyncio.sleep(0.002)
            await asyncio.sleep(0.05)
        times = list(app.draw_costs)
        await pilot.press("q")
    writer.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    directory = bench_dir() / "redraw"
    directory.mkdir(exist_ok=True)
    results = {}
    for n in (100, args.records):
        # Epoch records in both runs, so both show the same panels (the
        # learning-rate panel comes from them): only the length differs.
        per_epoch = 50 if n < 1000 else 1000
        name = f"cold-{n}.jsonl" if per_epoch == 1000 else f"redraw-{n}-{per_epoch}.jsonl"  # shares cold_open's file
        source = write_run(bench_dir() / name, n, steps_per_epoch=per_epoch)
        path = directory / f"run-{n}.jsonl"  # a copy, since records are appended to it
        path.write_bytes(source.read_bytes())
        results[n] = asyncio.run(redraw_times(path, n + 1, args.samples, per_epoch))
        path.unlink()
    short, long = median(results[100]), median(results[args.records])
    emit({
        "benchmark": "redraw",
        "records_short": 100,
        "records_long": args.records,
        "redraw_median_ms_short": round(short * 1000, 1),
        "redraw_median_ms_long": round(long * 1000, 1),
        "ratio_long_to_short": round(long / short, 2),
        "target_ratio": 1.5,
        "samples": args.samples,
        **machine(),
    })


if __name__ == "__main__":
    main()

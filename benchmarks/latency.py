"""Live latency: from a record appended to the run file to it being on screen,
and from an alerting record to the alert being visible.

The real `lossmon watch` app runs headless (Textual's run_test) in this
process; a record is appended with RunFileWriter, and the clock stops when
the app's model holds it ("in model") and when the first screen refresh
after the app handled the new data has been painted, taken with
call_after_refresh from a subclass: "values on screen" is the refresh of
the legends' latest values and the status line's step, done for every
record; "curves on screen" the plot redraw, which is paced while records
stream (lossmon/show/app.py). Records are appended one at a time, 0.6-1 s
apart (a run taking about a second per step), and again 50-150 ms apart
("streaming": the app then refreshes the values once a second and the
curves as above). Measured with inotify events and in polling mode. The
baseline, in the same run, is the bare file-event wake-up:
FileWatcher.wait() returning after an append.
Usage: python benchmarks/latency.py [--samples N]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_dir, emit, machine, median, records  # noqa: E402
from _timed_app import painted, timed_app_class, values_shown  # noqa: E402
from lossmon.read import FileWatcher  # noqa: E402
from lossmon.record import RunFileWriter  # noqa: E402


def batch(step: int, loss: float) -> dict:
    return {"kind": "batch", "run": "lat", "step": step, "epoch": step // 100, "batch": step % 100,
            "time": time.time(), "logs": {"loss": loss, "accuracy": 0.5}, "step_logs": {"loss": loss, "accuracy": 0.5}}


def wakeup_baseline(directory: Path, samples: int) -> float:
    """Median seconds from an append to FileWatcher.wait() returning True."""
    path = directory / "wake.jsonl"
    path.unlink(missing_ok=True)
    writer = RunFileWriter(path)
    delays = []
    with FileWatcher(path, poll_interval=5.0) as watcher:
        if watcher.mode != "events":
            return math.nan
        for step in range(samples):
            watcher.wait(0.05)  # drain earlier events
            appended: list[float] = []

            def append() -> None:
                time.sleep(0.02)
                appended.append(time.perf_counter())
                writer.write(batch(step, 0.5))

            thread = threading.Thread(target=append)
            thread.start()
            woke = watcher.wait(2.0)
            now = time.perf_counter()
            thread.join()
            if woke:
                delays.append(now - appended[0])
    writer.close()
    return median(delays)


async def app_latency(directory: Path, samples: int, polling: bool, spacing: tuple[float, float]) -> dict:
    WatchApp = timed_app_class()

    path = directory / f"live-{'poll' if polling else 'events'}.jsonl"
    path.unlink(missing_ok=True)
    writer = RunFileWriter(path)
    start = [r for r in records(100)]
    for record in start:
        writer.write({**record, "run": "lat"})
    app = WatchApp([path], polling_only=polling, poll_interval=2.0)
    shown, values, in_model, alert_shown = [], [], [], []
    step = 200
    async with app.run_test(size=(120, 40)) as pilot:
        while app.monitor.records < len(start):
            await asyncio.sleep(0.01)
        await pilot.pause()
        for i in range(samples):
            await asyncio.sleep(random.uniform(*spacing))
            step += 1
            before = app.monitor.records
            t0 = time.perf_counter()
            writer.write(batch(step, 0.3))
            while app.monitor.records == before:
                await asyncio.sleep(0.001)
            in_model.append(time.perf_counter() - t0)
            values.append(await values_shown(app, records=before + 1) - t0)
            shown.append(await painted(app, records=before + 1) - t0)
        for i in range(max(3, samples // 3)):
            await asyncio.sleep(random.uniform(0.05, 0.15))
            step += 1
            before = len(app.monitor.engine.alerts)
            t0 = time.perf_counter()
            writer.write(batch(step, math.nan))  # opens a critical non-finite alert
            alert_shown.append(await painted(app, alerts=before + 1) - t0)
            step += 1
            writer.write(batch(step, 0.3))  # clears it, so the next NaN opens a new one
            while app.monitor.engine.alerts[-1].active:
                await asyncio.sleep(0.005)
        mode = app.watch_mode
        await pilot.press("q")
    writer.close()
    return {
        "mode": mode,
        "spacing_s": list(spacing),
        "in_model_median_ms": round(median(in_model) * 1000, 1),
        "values_on_screen_median_ms": round(median(values) * 1000, 1),
        "values_on_screen_max_ms": round(max(values) * 1000, 1),
        "curves_on_screen_median_ms": round(median(shown) * 1000, 1),
        "curves_on_screen_max_ms": round(max(shown) * 1000, 1),
        "alert_visible_median_ms": round(median(alert_shown) * 1000, 1),
        "samples": len(shown),
        "alert_samples": len(alert_shown),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    directory = bench_dir() / "latency"
    directory.mkdir(exist_ok=True)
    baseline = wakeup_baseline(directory, args.samples)
    single = (0.6, 1.0)  # one record at a time, as from a run taking about a second per step
    stream = (0.05, 0.15)  # about 10 records a second: the app paces its screen updates
    events = asyncio.run(app_latency(directory, args.samples, polling=False, spacing=single))
    streaming = asyncio.run(app_latency(directory, args.samples, polling=False, spacing=stream))
    polling = asyncio.run(app_latency(directory, args.samples, polling=True, spacing=single))
    emit({
        "benchmark": "latency",
        "inotify": events,
        "inotify_streaming": streaming,
        "polling": polling,
        "baseline_event_wakeup_median_ms": round(baseline * 1000, 2),
        "target_inotify_ms": 100,
        "target_polling_ms": 1000,
        **machine(),
    })


if __name__ == "__main__":
    main()

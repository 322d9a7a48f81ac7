"""FileWatcher: real watchdog observers on real directories.

Timing bounds are deliberately loose: an event should arrive in well under a
second, so "within 2 s while the poll interval is 5 s" only fails when events
do not work at all.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from lossmon.format import encode
from lossmon.read import FileWatcher
from lossmon.read.watcher import POLLING_INTERVAL, is_remote_fs, mount_fs_type

LINE = encode({"kind": "batch", "run": "r1", "step": 3, "epoch": 0, "time": 1.0, "logs": {"loss": 0.5}})


def append(path: Path, data: bytes = LINE) -> None:
    with open(path, "ab") as f:
        f.write(data)


def timed_wait(watcher: FileWatcher, timeout: float | None = None) -> tuple[bool, float]:
    start = time.monotonic()
    seen = watcher.wait(timeout)
    return seen, time.monotonic() - start


def wait_for_event(watcher: FileWatcher, action, limit: float = 2.0) -> float:
    """Run `action` from another thread shortly after wait() began; return the latency."""
    timer = threading.Timer(0.1, action)
    timer.start()
    try:
        seen, took = timed_wait(watcher)
    finally:
        timer.join()
    assert seen, "wait() timed out instead of seeing the event"
    assert took < limit
    return took


@pytest.fixture
def run_file(tmp_path: Path) -> Path:
    path = tmp_path / "run.jsonl"
    path.write_bytes(LINE)
    return path


def test_append_wakes_wait_in_events_mode(run_file: Path) -> None:
    with FileWatcher(run_file, poll_interval=5, polling_only=False) as watcher:
        assert watcher.mode == "events"
        wait_for_event(watcher, lambda: append(run_file))
        # Appending before wait() is called is not lost either.
        append(run_file)
        seen, took = timed_wait(watcher)
        assert seen and took < 2


def test_quiet_file_wait_returns_false_after_interval(run_file: Path) -> None:
    with FileWatcher(run_file, poll_interval=0.3, polling_only=False) as watcher:
        watcher.wait(0)  # drop anything left over from setup
        seen, took = timed_wait(watcher)
        assert not seen
        assert 0.2 < took < 3


def test_timeout_shorter_than_interval(run_file: Path) -> None:
    with FileWatcher(run_file, poll_interval=5, polling_only=False) as watcher:
        watcher.wait(0)
        seen, took = timed_wait(watcher, timeout=0.2)
        assert not seen and took < 2


def test_file_created_after_start_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with FileWatcher(path, poll_interval=5, polling_only=False) as watcher:
        assert watcher.mode == "events"
        wait_for_event(watcher, lambda: path.write_bytes(LINE))


def test_rotation_and_deletion_are_noticed(run_file: Path) -> None:
    with FileWatcher(run_file, poll_interval=5, polling_only=False) as watcher:
        new = run_file.with_name("run.jsonl.new")
        new.write_bytes(LINE)
        watcher.wait(0)  # the new sibling must not matter; drain whatever it caused
        wait_for_event(watcher, lambda: os.replace(new, run_file))
        wait_for_event(watcher, run_file.unlink)


def test_other_files_in_the_directory_are_ignored(run_file: Path) -> None:
    with FileWatcher(run_file, poll_interval=0.5, polling_only=False) as watcher:
        watcher.wait(0)
        other = run_file.with_name("other.jsonl")
        timer = threading.Timer(0.05, lambda: append(other))
        timer.start()
        seen = watcher.wait()
        timer.join()
        assert not seen


def test_missing_parent_polls_then_switches_to_events(tmp_path: Path) -> None:
    path = tmp_path / "later" / "run.jsonl"
    with FileWatcher(path, poll_interval=5, polling_only=False) as watcher:
        assert watcher.mode == "polling"
        seen, took = timed_wait(watcher)
        assert not seen and took < 2  # short polling interval, not the 5 s one
        path.parent.mkdir()
        path.write_bytes(LINE)
        watcher.wait(0)  # notices the directory and starts watching it
        assert watcher.mode == "events"
        wait_for_event(watcher, lambda: append(path))


def test_polling_only_mode(run_file: Path) -> None:
    with FileWatcher(run_file, poll_interval=5, polling_only=True) as watcher:
        assert watcher.mode == "polling"
        append(run_file)
        seen, took = timed_wait(watcher)
        assert not seen  # no events in this mode: the caller just reads again
        assert took < 2 and took >= POLLING_INTERVAL * 0.5


def test_stop_is_idempotent_and_releases_waiters(run_file: Path) -> None:
    watcher = FileWatcher(run_file, poll_interval=30, polling_only=False).start()
    assert watcher.mode == "events"
    watcher.wait(0)
    timer = threading.Timer(0.1, watcher.stop)
    timer.start()
    seen, took = timed_wait(watcher)
    timer.join()
    assert not seen and took < 5
    watcher.stop()
    assert watcher.mode == "polling"
    assert not [t for t in threading.enumerate() if "Observer" in type(t).__name__ and t.is_alive()]


# ------------------------------------------------------------ network file system detection


def test_mount_type_uses_the_longest_matching_mount(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    share = tmp_path / "my share"
    mounts.write_text(
        "/dev/vda1 / ext4 rw 0 0\n"
        f"server:/x {str(share).replace(' ', chr(92) + '040')} nfs4 rw 0 0\n"
        f"server:/y {tmp_path}/sshfs fuse.sshfs rw 0 0\n"
        f"tmpfs {tmp_path}/sshfs-not tmpfs rw 0 0\n"
    )
    assert mount_fs_type(share / "run.jsonl", str(mounts)) == "nfs4"
    assert mount_fs_type(share, str(mounts)) == "nfs4"
    assert mount_fs_type(tmp_path / "sshfs" / "a" / "b", str(mounts)) == "fuse.sshfs"
    assert mount_fs_type(tmp_path / "sshfs-not" / "run.jsonl", str(mounts)) == "tmpfs"
    assert mount_fs_type(tmp_path / "elsewhere", str(mounts)) == "ext4"
    assert mount_fs_type(tmp_path, str(tmp_path / "no-such-mounts-file")) is None


def test_remote_fs_types() -> None:
    for fs in ("nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse.sshfs", "fuse.rclone"):
        assert is_remote_fs(fs), fs
    for fs in ("ext4", "xfs", "btrfs", "tmpfs", "overlay", "fuseblk", None):
        assert not is_remote_fs(fs), fs


def test_hundreds_of_files_share_one_observer_and_each_wakes(tmp_path: Path) -> None:
    """`watch dir/` with more files than the kernel's inotify instances
    (128 by default): one watch for the directory, every file woken by it."""
    paths = [tmp_path / f"run-{i}.jsonl" for i in range(300)]
    for path in paths:
        path.write_bytes(LINE)
    watchers = [FileWatcher(path, poll_interval=5, polling_only=False).start() for path in paths]
    try:
        assert all(w.mode == "events" for w in watchers)
        assert len({id(w._observer) for w in watchers}) == 1
        for index in (0, 150, 299):
            watchers[index].wait(0)
            wait_for_event(watchers[index], lambda: append(paths[index]))
    finally:
        for watcher in watchers:
            watcher.stop()
    assert all(w.mode == "polling" for w in watchers)


def test_past_the_kernel_limit_a_watcher_polls(tmp_path: Path, monkeypatch) -> None:
    """When the kernel refuses one more watch, that file is polled, the rest
    keep their events, and nothing raises."""
    from lossmon.read import watcher as watcher_module

    dirs = [tmp_path / f"d{i}" for i in range(3)]
    for d in dirs:
        d.mkdir()
        (d / "run.jsonl").write_bytes(LINE)
    ok = FileWatcher(dirs[0] / "run.jsonl", poll_interval=5, polling_only=False).start()
    real = watcher_module._SHARED._observer.schedule

    def refuse(handler, path, **kw):
        raise OSError(24, "inotify instance limit reached")

    monkeypatch.setattr(watcher_module._SHARED._observer, "schedule", refuse)
    refused = FileWatcher(dirs[1] / "run.jsonl", poll_interval=0.3, polling_only=False).start()
    try:
        assert ok.mode == "events" and refused.mode == "polling"
        seen, took = timed_wait(refused)
        assert took < 2  # polls at its own pace
    finally:
        monkeypatch.setattr(watcher_module._SHARED._observer, "schedule", real)
        refused.stop()
        ok.stop()


def test_a_shared_directory_watch_comes_back_after_the_directory_does(tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "runs"
    folder.mkdir()
    a, b = folder / "a.jsonl", folder / "b.jsonl"
    watchers = [FileWatcher(p, poll_interval=5, polling_only=False).start() for p in (a, b)]
    try:
        shutil.rmtree(folder)
        time.sleep(0.5)
        folder.mkdir()
        for watcher in watchers:  # each re-creates its watch
            for _ in range(10):
                watcher.wait(0.2)
                if watcher.mode == "events":
                    break
        assert all(w.mode == "events" for w in watchers)
        for watcher, path in zip(watchers, (a, b)):
            watcher.wait(0)
            wait_for_event(watcher, lambda: append(path))
    finally:
        for watcher in watchers:
            watcher.stop()

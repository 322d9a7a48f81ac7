"""Wake the reader when the run file changes, without busy polling.

File-system events make a live view feel instant, but they are not reliable
everywhere: inotify never sees writes made by another machine on a network
or FUSE mount, the parent directory may not exist yet, and the kernel may
refuse more watches. So events only shorten the wait; a timed poll always
backs them up, and the caller reads the file after every wait() either way.
"""

from __future__ import annotations

import os
import re
import threading
from types import TracebackType
from typing import Literal

from watchdog.events import (
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

Mode = Literal["events", "polling"]

POLLING_INTERVAL = 0.25  # seconds between looks when events cannot be trusted
MOUNTS_FILE = "/proc/self/mounts"

# File systems whose changes made elsewhere inotify cannot report.
_REMOTE_FS = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "9p", "afs", "ceph",
        "glusterfs", "lustre", "gpfs", "beegfs", "davfs", "ncpfs", "virtiofs",
        "vboxsf", "vmhgfs", "prl_fs", "sshfs", "fuse",
    }
)
# Only file events: opened/closed events would fire on our own reads and loop.
_EVENTS = [FileCreatedEvent, FileModifiedEvent, FileMovedEvent, FileDeletedEvent]


def mount_fs_type(path: str | os.PathLike[str], mounts_file: str = MOUNTS_FILE) -> str | None:
    """The type of the file system holding `path`, or None when unknown.

    The path need not exist: its nearest existing ancestor decides.
    """
    try:
        with open(mounts_file, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None  # not Linux, or /proc not mounted
    target = os.path.realpath(os.path.abspath(path))
    best, best_type = -1, None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        # Spaces and other odd characters appear as octal escapes such as \040.
        mount = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[1])
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= best:  # the later of equal mounts shadows the earlier
            best, best_type = len(mount), fields[2]
    return best_type


def is_remote_fs(fs_type: str | None) -> bool:
    """True for file systems where inotify misses other machines' writes."""
    if fs_type is None:
        return False
    return fs_type in _REMOTE_FS or fs_type.startswith("fuse.")


class _Handler(FileSystemEventHandler):
    """Sets the watcher's event for events that touch the watched file."""

    def __init__(self, target: str, changed: threading.Event) -> None:
        super().__init__()
        self._target = target
        self._changed = changed

    def on_any_event(self, event: FileSystemEvent) -> None:
        for raw in (event.src_path, event.dest_path):
            if raw and os.path.abspath(os.fsdecode(raw)) == self._target:
                self._changed.set()
                return


class _SharedObserver:
    """One watchdog observer (one thread, one inotify instance per watched
    directory) for every FileWatcher of the process: `watch dir/` with
    hundreds of files in one directory needs one instance, not hundreds,
    and the kernel's limit (128 instances by default) is never the number
    of files. Watchers of the same directory share its watch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._observer: BaseObserver | None = None
        self._users: dict[ObservedWatch, int] = {}

    def schedule(self, handler: FileSystemEventHandler, directory: str) -> tuple[BaseObserver, ObservedWatch]:
        """Add `handler` for `directory`; raises OSError or RuntimeError when
        the kernel refuses (instance or watch limits, no threads left)."""
        with self._lock:
            if self._observer is None or not self._observer.is_alive():
                observer = Observer()
                observer.start()
                self._observer, self._users = observer, {}
            observer = self._observer
            key = ObservedWatch(directory, recursive=False, event_filter=_EVENTS)
            dead = next((e for e in list(observer.emitters) if e.watch == key and not e.is_alive()), None)
            others: set[FileSystemEventHandler] = set()
            if dead is not None:  # its directory went away: a new emitter, the other watchers' handlers kept
                others = set(getattr(observer, "_handlers", {}).get(dead.watch, ()))
                observer.unschedule(dead.watch)
            watch = observer.schedule(handler, directory, event_filter=_EVENTS)
            for other in others - {handler}:
                observer.add_handler_for_watch(other, watch)
            self._users[watch] = self._users.get(watch, 0) + 1
            return observer, watch

    def release(self, observer: BaseObserver, handler: FileSystemEventHandler, watch: ObservedWatch) -> None:
        """Remove `handler`; the directory's watch goes with its last handler,
        the observer with its last watch."""
        stopped = None
        with self._lock:
            if observer is not self._observer:
                return  # an observer that died and was replaced; nothing of it is left to undo
            try:
                observer.remove_handler_for_watch(handler, watch)
            except KeyError:
                pass
            left = self._users.get(watch, 1) - 1
            if left > 0:
                self._users[watch] = left
            else:
                self._users.pop(watch, None)
                try:
                    observer.unschedule(watch)
                except KeyError:
                    pass
            if not self._users:
                stopped, self._observer = observer, None
        if stopped is not None:
            stopped.stop()
            if stopped.is_alive() and stopped is not threading.current_thread():
                stopped.join()


_SHARED = _SharedObserver()


class FileWatcher:
    """Tells a reader thread when to look at a file again.

    Watches the file's parent directory (so creation, deletion and rotation
    are seen too), through the observer all watchers share, and falls back
    to plain timed polling where events are unavailable or untrustworthy
    (or the kernel refuses one more watch); `mode` says which is in use.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        poll_interval: float = 2.0,
        polling_only: bool | None = None,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self.path = os.path.abspath(os.fspath(path))
        self.poll_interval = poll_interval
        if polling_only is None:
            polling_only = is_remote_fs(mount_fs_type(self.path))
        self.polling_only = polling_only
        self._changed = threading.Event()
        self._handler = _Handler(self.path, self._changed)
        self._observer: BaseObserver | None = None
        self._watch: ObservedWatch | None = None
        self._lock = threading.Lock()  # start/stop and wait() may run on different threads
        self._running = False
        self._gave_up = False  # the watch failed to start; events stay off

    @property
    def mode(self) -> Mode:
        """"events" while a native watch is active, otherwise "polling"."""
        return "events" if self._observer is not None else "polling"

    def start(self) -> FileWatcher:
        """Begin watching; a no-op when already started."""
        with self._lock:
            if not self._running:
                self._running = True
                self._changed.clear()  # set by stop() to release a waiter, not by the file
                if not self.polling_only:
                    self._try_watch(wake=False)
        return self

    def stop(self) -> None:
        """Stop watching (the shared observer stops with its last watcher); safe to call twice."""
        with self._lock:
            self._running = False
            self._drop_watch()
        self._changed.set()  # release a reader blocked in wait()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the file may have changed.

        Returns True when an event was seen, False when the interval (or the
        shorter `timeout`) ran out; the caller should read the file either way.
        """
        with self._lock:
            if self._running and not self.polling_only and not self._gave_up:
                self._check_watch()
        limit = self.poll_interval if self._observer is not None else min(self.poll_interval, POLLING_INTERVAL)
        if timeout is not None:
            limit = min(limit, max(timeout, 0.0))
        seen = self._changed.wait(limit)
        self._changed.clear()
        return seen and self._running

    def _check_watch(self) -> None:
        """Re-create a watch that died (parent deleted) or never started."""
        observer = self._observer
        if observer is not None:
            emitter = next((e for e in list(observer.emitters) if e.watch == self._watch), None)
            if not (observer.is_alive() and emitter is not None and emitter.is_alive()):
                self._drop_watch()
        if self._observer is None:
            self._try_watch(wake=True)  # the parent directory may exist by now

    def _drop_watch(self) -> None:
        observer, watch = self._observer, self._watch
        self._observer = self._watch = None
        if observer is not None and watch is not None:
            _SHARED.release(observer, self._handler, watch)

    def _try_watch(self, *, wake: bool) -> None:
        """Schedule the directory watch; on any failure, stay in polling mode."""
        parent = os.path.dirname(self.path)
        try:
            if not os.path.isdir(parent):
                return
            self._observer, self._watch = _SHARED.schedule(self._handler, parent)
        except (OSError, RuntimeError):  # inotify instance or watch limits, thread limits
            self._gave_up = os.path.isdir(parent)  # a vanished parent is worth another try
            return
        if wake:
            self._changed.set()  # the file may have appeared before the watch existed

    def __enter__(self) -> FileWatcher:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

"""Who writes under tf.distribute: the chief only, or every worker to its own file.

Several workers appending the same records to one file would double every
step, so by default only the chief writes. With `workers="all"` each worker
writes `<stem>.<task_type>-<task_id><suffix>` beside the given path, and
`lossmon watch a b` / `lossmon check a b` read them together.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

CHIEF_ONLY = "chief"
ALL_WORKERS = "all"
MODES = (CHIEF_ONLY, ALL_WORKERS)


@dataclass(frozen=True)
class Worker:
    """This process's place in a multi-worker cluster."""

    task_type: str
    task_id: int
    workers: int  # chief and workers together
    has_chief: bool = False  # the cluster names a "chief" task

    @property
    def is_chief(self) -> bool:
        # As tf.distribute decides: the chief, or worker 0 when there is no chief.
        return self.task_type == "chief" or (self.task_type == "worker" and self.task_id == 0 and not self.has_chief)

    def to_json(self) -> dict[str, Any]:
        return {"task_type": self.task_type, "task_id": self.task_id, "workers": self.workers, "chief": self.is_chief}


def current_worker(model: Any) -> Worker | None:
    """This process's worker identity, or None when training is not multi-worker."""
    spec: dict[str, Any] | None = None
    task_type = task_id = None
    resolver = getattr(getattr(model, "distribute_strategy", None), "cluster_resolver", None)
    try:
        if resolver is not None and resolver.task_type is not None:
            spec = resolver.cluster_spec().as_dict()
            task_type, task_id = resolver.task_type, resolver.task_id
    except Exception:
        spec = None
    if spec is None:
        try:
            config = json.loads(os.environ.get("TF_CONFIG") or "{}")
            spec = config.get("cluster") or {}
            task = config.get("task") or {}
            task_type, task_id = task.get("type"), task.get("index")
        except (ValueError, AttributeError):
            return None
    if not spec or not isinstance(task_type, str):
        return None
    workers = sum(len(spec.get(kind) or ()) for kind in ("chief", "worker"))
    if workers <= 1 and task_type in ("chief", "worker"):
        return None
    return Worker(task_type, int(task_id or 0), workers, has_chief=bool(spec.get("chief")))


def worker_path(path: str, worker: Worker) -> str:
    """`runs/a.jsonl` -> `runs/a.worker-1.jsonl`."""
    stem, suffix = os.path.splitext(path)
    return f"{stem}.{worker.task_type}-{worker.task_id}{suffix}"

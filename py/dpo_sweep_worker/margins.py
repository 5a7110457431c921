"""Margin logs in the run directory (seed-spec §3.6, with the seed's overwrite bugs fixed).

Layout (``root`` = ``runs/<id>/margins``)::

    root/epoch_EEE/margins.jsonl      one JSON record per optimizer step (per micro-batch with
                                      update_on: micro_batch), appended a whole line at a time
    root/epoch_EEE/step_SSSSS.npy     the float32 margin vector of that step (all micro-batches,
                                      all ranks); step_SSSSS_mbG.npy per micro-batch G (0-based)
                                      with update_on: micro_batch

``EEE`` is the epoch the step's data came from, ``SSSSS`` the optimizer step the record belongs to
(1-based: ``global_step`` after the step). A ``.npy`` file is written once and never overwritten
(seed-spec §7.6). Only rank 0 writes.

On resume from a checkpoint at step k, :meth:`MarginLogger.truncate_after` removes every record and
``.npy`` of a later step (they were written by the killed run after its last checkpoint and are
written again, identically, by the resumed one) and drops a torn last line.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from .logs import margin_summary

__all__ = ["MarginLogger", "read_records", "SEED_FIELDS"]

#: Fields of every record, in order (seed-spec §3.6).
SEED_FIELDS = ("epoch", "step", "batch_size", "mean", "std", "min", "p10", "median", "p90", "max", "pos_frac", "npy", "sample")

_NPY = re.compile(r"^step_(\d+)(?:_mb(\d+))?\.npy$")


def _json_safe(value: Any) -> Any:
    """Non-finite floats become null (the logs are strict JSON; TypeScript's JSON.parse rejects NaN)."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def read_records(path: str | os.PathLike) -> list[dict]:
    """The records of one ``margins.jsonl``; a torn (unparseable) last line is dropped."""
    out: list[dict] = []
    p = Path(path)
    if not p.exists():
        return out
    lines = p.read_text(encoding="utf-8").split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if i >= len(lines) - 2:  # the last line (a trailing "\n" leaves an empty string after it)
                break
            raise
    return out


class MarginLogger:
    """Writes margin records and ``.npy`` files (rank 0 only: construct with ``enabled=False`` elsewhere)."""

    def __init__(self, root: str | os.PathLike, *, sample_size: int = 64, enabled: bool = True, run_dir: str | os.PathLike | None = None):
        self.root = Path(root)
        self.sample_size = int(sample_size)
        self.enabled = enabled
        self.run_dir = Path(run_dir) if run_dir is not None else self.root.parent
        self._handle = None
        self._handle_epoch: int | None = None

    # -- writing --

    def _jsonl(self, epoch: int):
        if self._handle is None or self._handle_epoch != epoch:
            self.close()
            folder = self.root / f"epoch_{epoch:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            self._handle = open(folder / "margins.jsonl", "a", encoding="utf-8")
            self._handle_epoch = epoch
        return self._handle

    def write(self, margins, *, epoch: int, step: int, micro_batch: int | None = None, extra: dict[str, Any] | None = None) -> dict | None:
        """Write one record (and its ``.npy``); returns the record (None when disabled).

        ``margins``: the 1-D margin vector (tensor or array; stored as float32 in the ``.npy``, as
        float64 numbers in the record). ``extra``: the controller's fields, appended after the seed's.
        """
        if not self.enabled:
            return None
        if hasattr(margins, "detach"):
            margins = margins.detach().cpu().numpy()
        m = np.asarray(margins).reshape(-1)
        folder = self.root / f"epoch_{epoch:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"step_{step:05d}.npy" if micro_batch is None else f"step_{step:05d}_mb{micro_batch}.npy"
        npy = folder / name
        with open(npy, "xb") as f:  # never overwrite (seed-spec §7.6): an existing file is a bug
            np.save(f, m.astype(np.float32))
        values = m.astype(np.float64)
        sample = values if self.sample_size <= 0 else values[: self.sample_size]
        record: dict[str, Any] = {"epoch": epoch, "step": step, "batch_size": int(values.size)}
        record.update(margin_summary(values))
        record["npy"] = os.path.relpath(npy, self.run_dir)
        record["sample"] = [float(x) for x in sample]
        if micro_batch is not None:
            record["micro_batch"] = micro_batch
        if extra:
            record.update(extra)
        line = json.dumps(_json_safe(record), allow_nan=False) + "\n"
        handle = self._jsonl(epoch)
        handle.write(line)  # one write of a whole line
        handle.flush()
        return record

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._handle = None
        self._handle_epoch = None

    # -- resume --

    def truncate_after(self, step: int) -> int:
        """Remove records and ``.npy`` files of steps > ``step`` (and torn lines); returns how many
        records were removed. ``step=0`` clears the logs of an attempt that left no checkpoint."""
        if not self.enabled or not self.root.is_dir():
            return 0
        self.close()
        removed = 0
        for folder in sorted(self.root.glob("epoch_*")):
            jsonl = folder / "margins.jsonl"
            if jsonl.exists():
                records = read_records(jsonl)
                keep = [r for r in records if int(r.get("step", 0)) <= step]
                removed += len(records) - len(keep)
                text = "".join(json.dumps(r, allow_nan=False) + "\n" for r in keep)
                if text != jsonl.read_text(encoding="utf-8"):
                    tmp = jsonl.with_suffix(".jsonl.tmp")
                    tmp.write_text(text, encoding="utf-8")
                    os.replace(tmp, jsonl)
                if not keep:
                    jsonl.unlink()
            for npy in folder.glob("step_*.npy"):
                match = _NPY.match(npy.name)
                if match and int(match.group(1)) > step:
                    npy.unlink()
            try:
                folder.rmdir()  # only if now empty
            except OSError:
                pass
        return removed

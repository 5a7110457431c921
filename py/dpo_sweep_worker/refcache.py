"""Reference log-probs computed once and shared: by every run of a sweep and by later sweeps.

TRL's ``precompute_ref_log_probs`` caches per dataset fingerprint, which for in-memory datasets is a
temporary directory removed at exit, so every run recomputes.  Here the cache is content-addressed in
``<cache_dir>/ref-logps/<key>.npz``: the key hashes the reference model's identity, the tokenised
rows (so the tokenizer, chat template, truncation and ``max_length`` are all in it), the dtype and
TRL's ``ld_alpha``.  A file lock makes concurrent runs on other slots wait for the one computing.

``DPO_SWEEP_REF_PASS_LOG`` (a file path) records each computed pass, one JSON line, so tests can count
reference forward passes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

#: Columns of TRL's tokenised preference rows that determine the reference log-probs.
_TOKEN_COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids", "input_ids", "completion_mask")
KEY_VERSION = 1


def model_identity(path_or_id: str) -> str:
    """A local model directory: its weight and config files (path, size, mtime); a hub id: the id."""
    path = Path(path_or_id)
    if not path.is_dir():
        return f"hub:{path_or_id}"
    parts = []
    for f in sorted(path.iterdir()):
        if f.suffix in {".safetensors", ".bin", ".json", ".pt"} and f.is_file():
            st = f.stat()
            parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return f"dir:{path.resolve()}|" + "|".join(parts)


def dataset_digest(dataset: Any) -> str:
    """sha256 over the tokenised rows, in order."""
    h = hashlib.sha256()
    columns = [c for c in _TOKEN_COLUMNS if c in dataset.column_names]
    if not columns:  # pragma: no cover - TRL always tokenises before precomputing
        raise ValueError(f"no token columns in {dataset.column_names}")
    h.update(",".join(columns).encode())
    for column in columns:
        for value in dataset[column]:
            h.update(np.asarray(value, dtype=np.int64).tobytes())
            h.update(b"|")
    h.update(str(len(dataset)).encode())
    return h.hexdigest()


def cache_key(reference: str, dataset: Any, *, dtype: str, ld_alpha: float | None) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"v": KEY_VERSION, "ref": model_identity(reference), "dtype": dtype, "ld_alpha": ld_alpha}).encode())
    h.update(dataset_digest(dataset).encode())
    return h.hexdigest()[:32]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _record_pass(key: str, rows: int, seconds: float) -> None:
    log = os.environ.get("DPO_SWEEP_REF_PASS_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps({"key": key, "rows": rows, "seconds": seconds, "pid": os.getpid()}) + "\n")


class SharedRefLogpsMixin:
    """Mix into a DPOTrainer subclass: ``_precompute_ref_logps`` goes through the shared cache.

    The subclass sets ``self.ref_cache_dir`` (a directory) and ``self.ref_identity`` (the reference
    model path or hub id) before TRL precomputes (i.e. before ``DPOTrainer.__init__`` returns:
    set them as class attributes through ``make_trainer``, or in ``__init__`` before ``super()``).
    """

    ref_cache_dir: str | None = None
    ref_identity: str | None = None
    ref_dtype: str = "float32"

    def _precompute_ref_logps(self, dataset, name, batch_size):  # noqa: D401 - TRL's name
        if not self.ref_cache_dir or not self.ref_identity or self.accelerator.num_processes > 1:
            # Several ranks: TRL's own per-fingerprint cache (rank 0 writes, the others wait).
            return super()._precompute_ref_logps(dataset, name, batch_size)
        key = cache_key(self.ref_identity, dataset, dtype=self.ref_dtype, ld_alpha=getattr(self, "ld_alpha", None))
        path = Path(self.ref_cache_dir) / "ref-logps" / f"{key}.npz"
        with _locked(path.with_suffix(".lock")):
            if path.exists():
                with np.load(path) as stored:
                    chosen, rejected = stored["chosen"], stored["rejected"]
            else:
                started = time.monotonic()
                chosen, rejected = self._reference_pass(dataset, name, batch_size)
                tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
                np.savez(tmp, chosen=chosen, rejected=rejected)
                os.replace(tmp, path)
                _record_pass(key, len(dataset), time.monotonic() - started)
        if len(chosen) != len(dataset):  # pragma: no cover - the key covers the rows
            raise RuntimeError(f"reference cache {path} has {len(chosen)} rows for a dataset of {len(dataset)}")
        dataset = dataset.add_column("ref_chosen_logps", chosen.tolist())
        return dataset.add_column("ref_rejected_logps", rejected.tolist())

    def _reference_pass(self, dataset, name, batch_size) -> tuple[np.ndarray, np.ndarray]:
        """One forward pass of the reference over `dataset` (TRL's loop, without its cache file)."""
        import torch
        from torch.utils.data import DataLoader

        loader = self.accelerator.prepare(
            DataLoader(dataset, batch_size=batch_size, collate_fn=self.data_collator, num_workers=0, shuffle=False)
        )
        model = self.ref_model or self.model
        chosen, rejected = [], []
        for batch in loader:
            c, r = self.compute_ref_log_probs(model, batch)
            c, r = self.accelerator.gather_for_metrics((c, r))
            chosen.append(c.detach().float().cpu())
            rejected.append(r.detach().float().cpu())
        return torch.cat(chosen).numpy(), torch.cat(rejected).numpy()

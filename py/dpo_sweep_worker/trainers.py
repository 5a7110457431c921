"""TRL trainer construction for each algorithm (plain `dpo` is TRL's DPOTrainer unchanged)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from trl import DPOTrainer


def make_trainer(settings: dict, *, run_dir: Path, **kwargs: Any) -> tuple[DPOTrainer, Callable | None]:
    """The trainer for `settings["algorithm"]`, plus a callable giving live values for progress events."""
    algorithm = settings["algorithm"]
    if algorithm == "dpo":
        return DPOTrainer(**kwargs), None
    raise NotImplementedError(f"algorithm {algorithm!r} is not available in this worker yet")

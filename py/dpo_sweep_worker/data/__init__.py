"""Datasets for the worker: HH parsing, loading into TRL conversational rows, splits, synthetic data.

Cheap to import: standard library only (``datasets`` is imported when a hub id is loaded).

* :func:`split_hh`, :func:`parse_hh_to_messages`: seed-spec §3.1, exact.
* :func:`load_rows` → :class:`LoadResult`: local ``.json``/``.jsonl`` or hub id, any of the formats
  ``hh | messages | pairs | generated``, into rows for ``preference`` / ``sft`` / ``prompts``.
* :func:`train_eval_split`: deterministic hold-out.
* :mod:`.synthetic`: the checkable arithmetic preference data shipped in ``configs/data/``.
"""

from .convert import FORMATS, REASONS, TASKS, detect_format
from .hh import messages_to_hh, parse_hh_to_messages, split_hh
from .load import DataError, LoadResult, load_rows
from .split import SplitSpecError, parse_split, slice_indices, train_eval_split

__all__ = [
    "FORMATS",
    "REASONS",
    "TASKS",
    "DataError",
    "LoadResult",
    "SplitSpecError",
    "detect_format",
    "load_rows",
    "messages_to_hh",
    "parse_hh_to_messages",
    "parse_split",
    "slice_indices",
    "split_hh",
    "train_eval_split",
]

"""Load a dataset (local ``.json``/``.jsonl`` file or Hugging Face hub id) into TRL-ready rows.

Every record that does not become a row is counted by reason in ``LoadResult.dropped``. Malformed
ones are also listed with their line in ``LoadResult.bad_rows``.  Nothing is dropped silently.
Problems that make the whole load useless raise :class:`DataError`: a missing file, an unknown
format, a bad split, or no rows left.  ``datasets`` is imported only for hub ids and directories.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .convert import FORMATS, REASONS, TASKS, RowError, convert, detect_format
from .split import SplitSpecError, slice_indices

LOCAL_SUFFIXES = (".json", ".jsonl")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_MAX_LISTED_IN_ERROR = 5


class DataError(ValueError):
    """A dataset problem the user must fix; the message names the source and, where known, the line."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None):
        where = f"{source}:{line}: " if source and line else f"{source}: " if source else ""
        super().__init__(where + message)
        self.source = source
        self.line = line


@dataclass
class LoadResult:
    """The rows of one load, with an account of every record that did not make it.

    ``rows``: TRL-ready rows (shapes in :mod:`dpo_sweep_worker.data.convert`).
    ``lines``: for each row, the 1-based line of its record in a JSONL file, or its 1-based
    position in a ``.json`` array / hub split (after slicing, positions still refer to the whole
    split).
    ``dropped``: reason code → number of records dropped for it (``identical_pair`` included).
    ``bad_rows``: ``{"line": int, "reason": str, "detail": str}`` for each malformed record (every
    drop except ``identical_pair``), in file order.
    ``records``: how many records the split selected (``len(rows) + sum(dropped.values())``).
    """

    rows: list[dict]
    fmt: str
    task: str
    source: str
    split: str
    records: int
    lines: list[int] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    bad_rows: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-ready counts: ``{source, split, format, task, records, rows, dropped, bad_rows}``
        (``bad_rows`` is the list, capped at the first 100)."""
        return {
            "source": self.source,
            "split": self.split,
            "format": self.fmt,
            "task": self.task,
            "records": self.records,
            "rows": len(self.rows),
            "dropped": dict(self.dropped),
            "bad_rows": self.bad_rows[:100],
        }


def _is_local(source: str) -> bool:
    return (
        source.lower().endswith(LOCAL_SUFFIXES)
        or source.startswith(("/", "./", "../", "~"))
        or os.path.exists(source)
    )


def _decode_error(path: Path, raw: bytes, e: UnicodeDecodeError) -> DataError:
    """A :class:`DataError` naming the line (1-based) and column of the first byte that is not UTF-8."""
    line = raw.count(b"\n", 0, e.start) + 1
    column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
    bom = " (the file starts with a UTF-16 byte-order mark: save it as UTF-8)" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
    return DataError(
        f"not UTF-8 text: byte 0x{raw[e.start]:02x} at column {column} cannot be decoded{bom}; "
        "save the file as UTF-8",
        source=str(path),
        line=line,
    )


def _read_text(path: Path) -> str:
    """The file as UTF-8 text, a leading byte-order mark dropped (some Windows editors write one)."""
    raw = path.read_bytes()
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _decode_error(path, raw, e) from None


def _read_jsonl(path: Path) -> list[tuple[int, Any]]:
    """``(line number, parsed object or _Invalid)`` for each non-blank line."""
    out = []
    # Lines end at \n, \r\n or \r, as in text-mode files; not str.splitlines(), which also splits at
    # U+2028 and other characters that JSON strings may hold unescaped.
    for lineno, line in enumerate(_LINE_BREAK.split(_read_text(path)), start=1):
        if not line.strip():
            continue
        try:
            out.append((lineno, json.loads(line)))
        except json.JSONDecodeError as e:
            out.append((lineno, _Invalid(f"invalid JSON: {e.msg} (column {e.colno})")))
    return out


class _Invalid:
    def __init__(self, detail: str):
        self.detail = detail


def _read_json(path: Path) -> list[tuple[int, Any]]:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        hint = " (one JSON object per line? name the file .jsonl)" if e.msg == "Extra data" else ""
        raise DataError(f"invalid JSON: {e.msg}{hint}", source=str(path), line=e.lineno) from e
    if not isinstance(data, list):
        raise DataError("a .json dataset must be a JSON array of records", source=str(path))
    return list(enumerate(data, start=1))


def _read_local(source: str, split: str) -> list[tuple[int, Any]]:
    path = Path(os.path.expanduser(source))
    if not path.exists():
        raise DataError("file not found", source=source)
    if not path.is_file():
        raise DataError("not a file", source=source)
    if path.suffix.lower() not in LOCAL_SUFFIXES:
        raise DataError(f"unsupported file type {path.suffix!r}; use .json or .jsonl", source=source)
    records = _read_jsonl(path) if path.suffix.lower() == ".jsonl" else _read_json(path)
    if not records:
        raise DataError("the file holds no records (it is empty, blank lines only, or an empty JSON array)", source=source)
    try:
        keep = slice_indices(split, len(records))
    except SplitSpecError as e:
        raise DataError(str(e), source=source) from e
    return [records[i] for i in keep]


def _read_hub(source: str, split: str, config_name: str | None) -> list[tuple[int, Any]]:
    import datasets  # heavy: only for hub ids and dataset directories

    try:
        ds = datasets.load_dataset(source, config_name, split=split)
    except Exception as e:  # noqa: BLE001 - every failure becomes one clear DataError
        raise DataError(f"cannot load dataset (split {split!r}): {type(e).__name__}: {e}", source=source) from e
    # Positions in the full split are not exposed by datasets after slicing; number from 1.
    return list(enumerate(ds, start=1))


def load_rows(
    source: str | os.PathLike,
    split: str = "train",
    fmt: str | None = None,
    *,
    task: str = "preference",
    config_name: str | None = None,
) -> LoadResult:
    """Load *source* and convert each record to a TRL row for *task*.

    Args:
        source: a local ``.json`` (array of records) or ``.jsonl`` path, a dataset directory, or a
            hub dataset id (loaded with ``datasets.load_dataset(source, config_name, split=split)``).
        split: ``train``, ``train[:1%]``, ``train[10:20]``, ``train[90%:]``, parts joined by ``+``.
            Local files have the single split ``train``; slicing follows ``datasets`` semantics.
        fmt: ``hh`` | ``messages`` | ``pairs`` | ``generated``, or ``None`` to detect it from the
            keys of the first record that is a JSON object.
        task: ``preference`` (DPO rows), ``sft`` (``{"messages"}`` rows) or ``prompts``
            (``{"prompt", "reference"}`` rows for generation).

    Raises:
        DataError: missing/unreadable file, bad split, unknown or undetectable format, a format
            that cannot serve *task*, or no rows left after filtering.
    """
    source = os.fspath(source)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    if fmt is not None and fmt not in FORMATS:
        raise DataError(f"unknown data format {fmt!r}; use one of {', '.join(FORMATS)}", source=source)
    if _is_local(source) and not os.path.isdir(os.path.expanduser(source)):
        records = _read_local(source, split)
    else:
        records = _read_hub(source, split, config_name)
    if not records:
        raise DataError(f"split {split!r} selects no records", source=source)

    if fmt is None:
        fmt = _detect(records, source)
    if fmt == "messages" and task == "preference":
        raise DataError(
            "'messages' data has no rejected responses; preference training needs hh, pairs or generated data",
            source=source,
        )

    result = LoadResult(rows=[], fmt=fmt, task=task, source=source, split=split, records=len(records))
    for line, record in records:
        try:
            if isinstance(record, _Invalid):
                raise RowError("invalid_json", record.detail)
            row = convert(record, fmt, task)
        except RowError as e:
            result.dropped[e.reason] = result.dropped.get(e.reason, 0) + 1
            if e.reason != "identical_pair":
                result.bad_rows.append({"line": line, "reason": e.reason, "detail": e.detail})
            continue
        result.rows.append(row)
        result.lines.append(line)

    if not result.rows:
        raise DataError(_empty_message(result), source=source)
    return result


def _detect(records: Iterable[tuple[int, Any]], source: str) -> str:
    for line, record in records:
        if isinstance(record, dict):
            fmt = detect_format(record)
            if fmt is None:
                raise DataError(
                    f"cannot detect the data format from the keys {sorted(record)}; expected chosen+rejected (hh), "
                    "prompt+chosen+rejected (pairs), messages, or prompt_messages (generated); set the format explicitly",
                    source=source,
                    line=line,
                )
            return fmt
    problems = []
    for line, record in list(records)[:_MAX_LISTED_IN_ERROR]:
        what = record.detail if isinstance(record, _Invalid) else f"a JSON {_json_type(record)}, not an object"
        problems.append(f"line {line}: {what}")
    hint = ""
    if source.lower().endswith(".jsonl"):
        hint = " (a .jsonl file needs one JSON object per line; a JSON array or an indented object belongs in a .json file)"
    raise DataError(
        f"no record is a JSON object, so the data format cannot be detected{hint}; first records: {'; '.join(problems)}",
        source=source,
    )


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _empty_message(result: LoadResult) -> str:
    counts = ", ".join(f"{REASONS.get(k, k)}: {v}" for k, v in sorted(result.dropped.items()))
    first = "; ".join(f"line {b['line']}: {b['detail']}" for b in result.bad_rows[:_MAX_LISTED_IN_ERROR])
    msg = f"no usable rows in split {result.split!r} as {result.fmt!r} data for {result.task}"
    msg += f" ({result.records} records dropped — {counts})"
    if first:
        msg += f"; first problems: {first}"
    return msg

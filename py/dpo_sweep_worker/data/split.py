"""Split specifications (``train``, ``train[:1%]``, ``train[10:20]``, ``train[90%:]``) and train/eval splits.

:func:`slice_indices` applies a spec to a local file's records with the same semantics as Hugging
Face ``datasets`` (``ReadInstruction``), so a plan means the same rows whether its dataset is a local
file or a hub id.  Pure standard library.
"""

from __future__ import annotations

import math
import random
import re
from typing import TypeVar

T = TypeVar("T")

_SPEC_RE = re.compile(
    r"^(?P<split>\w+(?:\.\w+)*)"
    r"(?:\[(?:(?P<from>-?[\d_]+)(?P<from_pct>%)?)?:(?:(?P<to>-?[\d_]+)(?P<to_pct>%)?)?\])?"
    r"(?:\((?P<rounding>[^)]*)\))?$"
)
_PLUS_RE = re.compile(r"\s*\+\s*")


class SplitSpecError(ValueError):
    """A split specification that cannot be parsed or names an unknown split."""


def parse_split(spec: str) -> list[dict]:
    """Parse *spec* into parts ``{"split", "from", "to", "unit": "abs"|"%", "rounding"}``.

    ``+`` joins parts (``train[:10]+train[-10:]``).  As in ``datasets``, a ``%`` on either bound
    makes both bounds percentages.  ``rounding`` is ``"closest"`` (default) or ``"pct1_dropremainder"``.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise SplitSpecError(f"empty split specification {spec!r}")
    parts = []
    for sub in _PLUS_RE.split(spec.strip()):
        m = _SPEC_RE.match(sub)
        if not m:
            raise SplitSpecError(
                f"cannot parse split {sub!r}; use e.g. 'train', 'train[:100]', 'train[10:20]', 'train[:1%]'"
            )
        rounding = m.group("rounding") or "closest"
        if rounding not in ("closest", "pct1_dropremainder"):
            raise SplitSpecError(f"unknown rounding {rounding!r} in split {sub!r}")
        unit = "%" if m.group("from_pct") or m.group("to_pct") else "abs"
        frm = int(m.group("from")) if m.group("from") else None
        to = int(m.group("to")) if m.group("to") else None
        if unit == "%":
            for b in (frm, to):
                if b is not None and abs(b) > 100:
                    raise SplitSpecError(f"percent bound {b} out of range in split {sub!r}")
        parts.append({"split": m.group("split"), "from": frm, "to": to, "unit": unit, "rounding": rounding})
    return parts


def _pct(boundary: int, n: int, rounding: str) -> int:
    if rounding == "closest":
        return int(round(boundary * n / 100.0))
    if n < 100:
        raise SplitSpecError("'pct1_dropremainder' rounding needs at least 100 records")
    return boundary * math.trunc(n / 100.0)


def slice_indices(spec: str, n: int, *, splits: tuple[str, ...] = ("train",)) -> list[int]:
    """Record indices selected by *spec* from a split of *n* records (``datasets`` semantics).

    Bounds are clamped to ``[0, n]``, negative bounds count from the end, percentages round to the
    closest index.  Parts joined by ``+`` are concatenated in order.  Raises :class:`SplitSpecError`
    for an unknown split name.

    >>> slice_indices("train[:1%]", 250)     # round(2.5) == 2 (banker's rounding, as in datasets)
    [0, 1]
    >>> slice_indices("train[-2:]", 5)
    [3, 4]
    """
    out: list[int] = []
    for part in parse_split(spec):
        if part["split"] not in splits:
            raise SplitSpecError(
                f"unknown split {part['split']!r}; a local file has one split: {', '.join(splits)}"
            )
        frm, to = part["from"], part["to"]
        if part["unit"] == "%":
            frm = 0 if frm is None else _pct(frm, n, part["rounding"])
            to = n if to is None else _pct(to, n, part["rounding"])
        else:
            frm = 0 if frm is None else frm
            to = n if to is None else to
        if frm < 0:
            frm = max(n + frm, 0)
        if to < 0:
            to = max(n + to, 0)
        out.extend(range(min(frm, n), min(to, n)))
    return out


def train_eval_split(rows: list[T], val_ratio: float, seed: int) -> tuple[list[T], list[T]]:
    """Deterministically hold out ``ceil(val_ratio * len(rows))`` rows for evaluation.

    The held-out indices are ``random.Random(seed).sample(range(n), k)``.  Both parts keep the
    input order.  ``val_ratio == 0`` returns ``(rows, [])``.  With ``0 < val_ratio < 1``, each part
    gets at least one row, which needs ``len(rows) >= 2``.

    Returns:
        ``(train_rows, eval_rows)``; together they are a partition of *rows*.
    """
    if not 0 <= val_ratio < 1:
        raise ValueError(f"val_ratio must be in [0, 1), got {val_ratio}")
    n = len(rows)
    if val_ratio == 0:
        return list(rows), []
    if n < 2:
        raise ValueError(f"cannot hold out an eval split from {n} row(s); need at least 2")
    k = min(max(math.ceil(val_ratio * n), 1), n - 1)
    held = set(random.Random(seed).sample(range(n), k))
    train = [r for i, r in enumerate(rows) if i not in held]
    evals = [r for i, r in enumerate(rows) if i in held]
    return train, evals

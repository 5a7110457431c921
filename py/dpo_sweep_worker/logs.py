"""Margin summaries for the margin logs (seed-spec §3.6).

numpy and the standard library only (tensors are accepted by duck typing, so torch is not imported).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MARGIN_SUMMARY_FIELDS", "margin_summary"]

#: Keys of :func:`margin_summary`, in log order.
MARGIN_SUMMARY_FIELDS = ("mean", "std", "min", "p10", "median", "p90", "max", "pos_frac")


def _as_float64(margins) -> np.ndarray:
    if hasattr(margins, "detach") and hasattr(margins, "cpu"):  # torch.Tensor (any device/dtype)
        margins = margins.detach().cpu().double().numpy()
    return np.asarray(margins, dtype=np.float64).reshape(-1)


def margin_summary(margins) -> dict[str, float]:
    """Summary statistics of a margin vector ``M`` (seed-spec §3.6 fields), as python floats.

    For ``M`` of length n (a 1-D tensor on any device, numpy array or list; other shapes are
    flattened), computed in float64:

    * ``mean`` = (1/n) Σ M_i;  ``std`` = sqrt((1/n) Σ (M_i − mean)²)  (population, ddof = 0)
    * ``min``, ``max``
    * ``p10``, ``median``, ``p90`` = ``np.percentile`` with linear interpolation: the value at
      position ``(n − 1)·p/100`` of the sorted margins, interpolated between its neighbours
    * ``pos_frac`` = (1/n) Σ 1[M_i > 0]   (strictly positive; a margin of exactly 0 is not counted)

    Empty input raises ``ValueError``. Non-finite margins are not rejected (this is a diagnostic):
    a NaN propagates into the moments and percentiles and is not counted in ``pos_frac``.
    """
    m = _as_float64(margins)
    if m.size == 0:
        raise ValueError("margin_summary needs at least one margin")
    p10, median, p90 = np.percentile(m, [10.0, 50.0, 90.0], method="linear")
    return {
        "mean": float(np.mean(m)),
        "std": float(np.std(m, ddof=0)),
        "min": float(np.min(m)),
        "p10": float(p10),
        "median": float(median),
        "p90": float(p90),
        "max": float(np.max(m)),
        "pos_frac": float(np.count_nonzero(m > 0.0)) / float(m.size),
    }

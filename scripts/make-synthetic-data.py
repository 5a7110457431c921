#!/usr/bin/env python3
"""Regenerate the synthetic datasets in configs/data/ (deterministic; the output is committed).

    PYTHONPATH=py python scripts/make-synthetic-data.py [--check]

The generator and the preference rule live in py/dpo_sweep_worker/data/synthetic.py.  ``--check``
writes nothing and exits 1 when a shipped file differs from what the generator produces.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "py"))

from dpo_sweep_worker.data import quickstart, synthetic  # noqa: E402

OUT = ROOT / "configs" / "data"


def render(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n" for row in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped files instead of writing")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    stale = []
    files = dict(synthetic.generate(args.seed))
    files.update({f"quickstart/{name}": rows for name, rows in quickstart.generate_quickstart(args.seed).items()})
    for name, rows in files.items():
        text = render(rows)
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}: {len(rows)} rows, {len(text.encode())} bytes")
    if stale:
        print(f"stale: {', '.join(stale)}; run scripts/make-synthetic-data.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

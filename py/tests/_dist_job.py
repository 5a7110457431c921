"""One rank of the 2-process test (launched by torchrun from test_dist.py): trains each algorithm with
the recipe, writing per-rank controller state logs (DPO_SWEEP_STATE_LOG, a test-only mode)."""

import json
import os
import sys

from dpo_sweep_worker.recipes import preference

job = json.load(open(sys.argv[1]))
rank = int(os.environ["RANK"])
for name, request in job["runs"].items():
    os.environ["DPO_SWEEP_STATE_LOG"] = os.path.join(job["out"], f"state-{name}")
    outcome = preference.train(request)
    outcome.pop("log_history", None)
    with open(os.path.join(job["out"], f"outcome-{name}-rank{rank}.json"), "w") as f:
        json.dump(outcome, f)

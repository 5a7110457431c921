"""Several training processes for one run (`resources.processes_per_run > 1`, or `gpus_per_run > 1` on CUDA).

How many: :func:`processes_for` — ``processes_per_run`` when it is above 1; otherwise, on CUDA, one
process per visible GPU when ``gpus_per_run > 1`` (the executor sets ``CUDA_VISIBLE_DEVICES`` to the
run's GPUs; torchrun's ``LOCAL_RANK`` then picks each rank's GPU and accelerate uses NCCL). On CPU
``gpus_per_run`` changes nothing. The ranks train with DDP, or FSDP when ``resources.fsdp`` asks for it
(passed through to ``TrainingArguments``; untested on CPU). The GPU path is untested here (no GPU).

The bridge talks to one Python worker. For a multi-process run that worker (the **parent**) starts
``torchrun --standalone --nproc_per_node N -m dpo_sweep_worker.launch WORKDIR`` and waits; every rank
(a **child**) runs the ordinary recipe, so DDP, gathering and checkpointing are the trainer's business:

* ``WORKDIR`` (``run_dir/.launch-*``, removed afterwards) holds ``request.json``; rank 0 appends its
  progress events to ``events.jsonl``, which the parent relays to the bridge as they come; each rank
  that ends writes ``outcome-rank<R>.json`` (the result, or the exception's type, message and
  traceback).
* A stop request to the parent (SIGTERM/SIGINT: ``host.stop_requested()``) creates ``WORKDIR/stop``;
  the children's :class:`~dpo_sweep_worker.callbacks.EventCallback` sees it (``DPO_SWEEP_STOP_FILE``),
  the ranks agree on it with an all-reduce, checkpoint at the same step and return ``interrupted``.
* The parent re-raises a child's ``SpecError`` / ``DataError`` / ``NonFiniteLossError`` as the same
  class, so the TypeScript side classifies the failure as it would for one process.
* torchrun dies with the parent (``PR_SET_PDEATHSIG``); the ranks die with torchrun (``host``'s
  parent-death watchdog, active in every process that imports it).

**Across nodes** (``resources.nodes_per_run: N > 1``, Slurm only): the run's processes are split evenly over
``N`` nodes of the Slurm job the worker runs in (the Slurm executor asks for ``--nodes=N``). The parent runs
``srun --nodes=N --ntasks-per-node=1 … torchrun --nnodes=N --nproc_per_node=P --rdzv_backend=c10d
--rdzv_endpoint=HOST:PORT``: one torchrun agent per node, meeting at a free port of the parent's node
(``HOST``: ``DPO_SWEEP_RDZV_HOST``, else this node's hostname). ``WORKDIR`` lies in the run directory, on
the filesystem the nodes share, so request, events, stop file and outcomes work as on one node. When the
parent dies, the batch job ends and Slurm ends its steps. Each rank's outcome names its node; the parent
emits them as a ``ranks`` event (``events.jsonl``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from . import host

STOP_ENV = "DPO_SWEEP_STOP_FILE"
_POLL_S = 0.2
#: What a rank reports when another rank died under it in a collective (gloo, NCCL).
_PEER_FAILURE = re.compile(r"Connection closed by peer|remote worker crash|Connection reset by peer|NCCL communicator was aborted", re.I)


def _visible_gpus() -> int:
    try:
        import torch

        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except Exception:  # pragma: no cover - a broken CUDA install trains on one process, as before
        return 0


def processes_for(settings: dict) -> int:
    """The number of training processes of a run (see the module docstring)."""
    resources = settings.get("resources") or {}
    processes = int(resources.get("processes_per_run", 1))
    gpus = int(resources.get("gpus_per_run", 1))
    if processes > 1 or gpus <= 1:
        return max(1, processes)
    return max(1, min(gpus, _visible_gpus()))


def layout(settings: dict) -> tuple[int, int]:
    """``(nodes, processes per node)`` of a run: ``processes_per_run`` (or, on CUDA, ``gpus_per_run``) split
    evenly over ``resources.nodes_per_run`` nodes, at least one process per node."""
    resources = settings.get("resources") or {}
    nodes = max(1, int(resources.get("nodes_per_run", 1)))
    if nodes == 1:
        return 1, processes_for(settings)
    processes = int(resources.get("processes_per_run", 1))
    gpus = int(resources.get("gpus_per_run", 1))
    if processes > 1:
        per_node = processes // nodes
    elif gpus > 1 and _visible_gpus():
        per_node = min(gpus // nodes, _visible_gpus())
    else:
        per_node = 1
    return nodes, max(1, per_node)


def _slurm_nodes() -> int:
    """Nodes of the Slurm job this process runs in (0: not in one)."""
    if not os.environ.get("SLURM_JOB_ID"):
        return 0
    for key in ("SLURM_JOB_NUM_NODES", "SLURM_NNODES"):
        try:
            return int(os.environ[key])
        except (KeyError, ValueError):
            continue
    return 1


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def _node_command(nodes: int, processes: int, work: Path) -> list[str]:
    """``srun … torchrun …`` for a run whose ranks span ``nodes`` nodes of this Slurm job."""
    from .runtime import SpecError

    have = _slurm_nodes()
    if have < nodes:
        where = f"a Slurm job of {have} node{'s' if have != 1 else ''}" if have else "no Slurm job"
        raise SpecError(
            f"resources.nodes_per_run is {nodes}: the run's ranks span {nodes} nodes of a Slurm allocation "
            f"(executor: slurm asks for them), but this worker runs in {where}"
        )
    srun = shutil.which("srun")
    if srun is None:
        raise SpecError(f"resources.nodes_per_run is {nodes}, but srun is not on PATH of the node running the run")
    host_name = os.environ.get("DPO_SWEEP_RDZV_HOST") or socket.gethostname()
    cmd = [srun, "--overlap", f"--nodes={nodes}", f"--ntasks={nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1", "--export=ALL"]
    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus and cpus.isdigit():  # srun 22.05 does not take it from the job's environment
        cmd.append(f"--cpus-per-task={cpus}")
    return cmd + [
        sys.executable, "-m", "torch.distributed.run", f"--nnodes={nodes}", f"--nproc_per_node={processes}",
        "--rdzv_backend=c10d", f"--rdzv_endpoint={host_name}:{_free_port()}", f"--rdzv_id={work.name.lstrip('.')}",
        "-m", "dpo_sweep_worker.launch", str(work),
    ]


def _set_pdeathsig() -> None:  # runs in the torchrun child before exec
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover - best effort (non-Linux)
        pass


def _relay(path: Path, offset: int) -> int:
    """Emit the complete lines of ``path`` after ``offset``; returns the new offset."""
    if not path.exists():
        return offset
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n")
    if end < 0:
        return offset
    for line in data[: end + 1].splitlines():
        if line.strip():
            try:
                host.emit(json.loads(line))
            except json.JSONDecodeError:
                pass
    return offset + end + 1


def _rebuild(error: dict) -> BaseException:
    """The exception a child reported, as the same class where the class matters for classification."""
    from .callbacks import NonFiniteLossError
    from .data import DataError
    from .runtime import SpecError

    classes = {"SpecError": SpecError, "DataError": DataError, "NonFiniteLossError": NonFiniteLossError}
    cls = classes.get(error.get("type", ""))
    message = error.get("message") or error.get("type") or "unknown error"
    if cls is not None:
        return cls(message)
    return RuntimeError(f"{error.get('type')} in a training process: {message}")


def _cause(errors: list[dict]) -> dict:
    """The error to report from the ranks' errors (in rank order): the first that is not an echo of another
    rank's death in a collective ("connection closed by peer"), which would hide the cause."""
    causes = [e for e in errors if not _PEER_FAILURE.search(e.get("message") or "")]
    return (causes or errors)[0]


def launch(request: dict, processes: int, nodes: int = 1) -> dict:
    """Run ``request`` in ``processes`` ranks per node (torchrun; on ``nodes > 1`` nodes of the Slurm job through
    srun) and return rank 0's outcome."""
    world = processes * nodes
    run_dir = Path(request["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".launch-", dir=run_dir))
    (work / "request.json").write_text(json.dumps(request))
    events, stop = work / "events.jsonl", work / "stop"
    package_root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env[STOP_ENV] = str(stop)
    if nodes > 1:
        try:
            cmd = _node_command(nodes, processes, work)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        what = f"{world} training processes on {nodes} nodes"
    else:
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", "dpo_sweep_worker.launch", str(work),
        ]
        what = f"{processes} training processes"
    host.emit({"kind": "phase", "phase": f"launching {what}"})
    proc = subprocess.Popen(cmd, env=env, preexec_fn=_set_pdeathsig if sys.platform.startswith("linux") else None)
    offset = 0
    try:
        while proc.poll() is None:
            offset = _relay(events, offset)
            if host.stop_requested() and not stop.exists():
                stop.touch()
            time.sleep(_POLL_S)
        _relay(events, offset)
        outcomes = {}
        for rank in range(world):
            path = work / f"outcome-rank{rank}.json"
            if path.exists():
                outcomes[rank] = json.loads(path.read_text())
        if outcomes:
            host.emit({"kind": "ranks", "ranks": [{"rank": r, "node": outcomes[r].get("node")} for r in sorted(outcomes)]})
        first = outcomes.get(0)
        if first is not None and "result" in first and proc.returncode == 0:
            return first["result"]
        errors = [outcomes[rank]["error"] for rank in sorted(outcomes) if "error" in outcomes[rank]]
        if errors:
            raise _rebuild(_cause(errors))
        launcher = "srun/torchrun" if nodes > 1 else "torchrun"
        raise RuntimeError(f"{launcher} exited with code {proc.returncode} and no outcome (see worker.log)")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def _child(work: Path) -> int:
    """One rank: run the recipe, report the outcome (rank 0 also streams its events)."""
    rank = int(os.environ.get("RANK", "0"))
    request = json.loads((work / "request.json").read_text())
    if rank == 0:
        events = open(work / "events.jsonl", "a", encoding="utf-8")

        def emit(text: str) -> None:
            events.write(text + "\n")
            events.flush()

        host._emit = emit
    host._in_call.set()  # a SIGTERM now asks for a checkpoint and a stop, as during a bridge call
    try:
        from .facade import run_recipe

        report: dict[str, Any] = {"result": run_recipe(request)}
        code = 0
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which re-raises it
        traceback.print_exc()
        report = {"error": {"type": type(exc).__name__, "module": type(exc).__module__, "message": str(exc),
                            "traceback": traceback.format_exc()}}
        code = 1
    report["node"] = os.environ.get("SLURMD_NODENAME") or socket.gethostname()
    path = work / f"outcome-rank{rank}.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(host.to_json(report))
    os.replace(tmp, path)
    return code


if __name__ == "__main__":
    sys.exit(_child(Path(sys.argv[1])))

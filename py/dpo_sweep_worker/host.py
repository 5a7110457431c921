"""The call host: the one module the TypeScript bridge imports over pythonia.

Standard library only, so it loads in milliseconds and works with any interpreter (the bridge tests
use it with fixture modules and no torch).  It makes the pythonia boundary safe:

* Only JSON text crosses the bridge.  Every call returns a ``str`` holding
  ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {"type", "message", "traceback"}}``.
  Non-finite floats become the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``, so Node's IPC
  JSON parser can never see a bare ``NaN``.
* ``BaseException`` is caught, ``SystemExit`` and ``KeyboardInterrupt`` included: a call that raises
  never takes the worker down with it.
* During a call, file descriptors 1 and 2 point at the call's log file, so ``print`` and C-level
  writes land in the run's ``worker.log`` and never on the user's terminal.
* A parent-death watchdog (``PR_SET_PDEATHSIG`` plus a ``getppid`` poll) ends this process when the
  Node process that spawned it dies, so no orphan keeps training or holding a GPU.
* SIGTERM/SIGINT set a stop flag that long calls poll (``stop_requested()``) to checkpoint and return;
  a second signal exits at once.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import json
import math
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any, Callable

_PARENT_PID = os.getppid()
_WATCHDOG_PERIOD_S = 0.25
_EXIT_PARENT_GONE = 70

_stop = threading.Event()
_in_call = threading.Event()
_stop_at = 0.0
#: Signals this close together are one request (a Slurm scancel signals every process of the job, and
#: the runner forwards its own SIGTERM too): only a later one means "exit now".
_SAME_REQUEST_S = 2.0
_stop_signals: list[int] = []
_modules: dict[str, Any] = {}
_emit: Callable[[str], Any] | None = None


# --- parent-death watchdog -------------------------------------------------------------------------


def _parent_gone() -> bool:
    return os.getppid() != _PARENT_PID


def _watch_parent() -> None:
    while True:
        time.sleep(_WATCHDOG_PERIOD_S)
        if _parent_gone():
            os._exit(_EXIT_PARENT_GONE)


def _install_watchdog() -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except Exception:  # pragma: no cover - the poll below still covers it
            pass
    if _parent_gone():  # the parent died before prctl took effect
        os._exit(_EXIT_PARENT_GONE)
    threading.Thread(target=_watch_parent, name="dpo-sweep-parent-watchdog", daemon=True).start()


# --- stop requests ---------------------------------------------------------------------------------


def _on_stop_signal(signum: int, _frame: Any) -> None:
    global _stop_at
    if _stop.is_set() and time.monotonic() - _stop_at < _SAME_REQUEST_S:
        return
    if not _in_call.is_set() or _stop.is_set():
        # Idle: a stop request means exit.  Busy, second request: the user means it.
        os._exit(128 + signum)
    _stop_at = time.monotonic()
    _stop_signals.append(signum)
    _stop.set()


def stop_requested() -> bool:
    """True once SIGTERM or SIGINT arrived: long calls should checkpoint and return."""
    return _stop.is_set()


def clear_stop() -> None:
    _stop.clear()
    _stop_signals.clear()


def _install_signal_handlers() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_stop_signal)
        signal.signal(signal.SIGINT, _on_stop_signal)


# --- JSON without NaN ------------------------------------------------------------------------------


def _finite(value: Any) -> Any:
    """Replace non-finite floats (also inside containers, numpy scalars, tensors) by strings."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    item = getattr(value, "item", None)
    tolist = getattr(value, "tolist", None)
    if callable(tolist):  # numpy arrays and tensors
        return _finite(tolist())
    if callable(item):  # numpy / torch scalars
        return _finite(item())
    return str(value)


def to_json(value: Any) -> str:
    return json.dumps(_finite(value), allow_nan=False)


# --- events ----------------------------------------------------------------------------------------


def emit(event: dict[str, Any]) -> None:
    """Send one progress event to the bridge (a JSON string; the bridge never sees a proxy)."""
    if _emit is None:
        return
    try:
        _emit(to_json(event))
    except Exception:
        # A broken event channel must not break training; the run's own files stay the record.
        pass


# --- fd redirection --------------------------------------------------------------------------------


class _Redirect:
    """Point fds 1 and 2 at a log file for the duration of a call (C-level writes included)."""

    def __init__(self, path: str | None):
        self.path = path
        self.saved: tuple[int, int] | None = None

    def __enter__(self) -> "_Redirect":
        if not self.path:
            return self
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        _flush_std()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.saved = (os.dup(1), os.dup(2))
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.saved is None:
            return
        _flush_std()
        out, err = self.saved
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        self.saved = None


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    try:
        libc = ctypes.CDLL(None)
        libc.fflush(None)
    except Exception:
        pass


# --- calls -----------------------------------------------------------------------------------------


def _load(target: str) -> Any:
    module = _modules.get(target)
    if module is not None:
        return module
    if os.path.isabs(target):
        name = "_dpo_sweep_target_" + str(abs(hash(target)))
        spec = importlib.util.spec_from_file_location(name, target)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load module from {target}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    _modules[target] = module
    return module


def _error(exc: BaseException) -> dict[str, Any]:
    message = str(exc)
    if isinstance(exc, SystemExit):
        message = f"SystemExit raised inside the call (exit code {exc.code!r})"
    elif isinstance(exc, KeyboardInterrupt):
        message = "KeyboardInterrupt raised inside the call"
    elif not message:
        message = type(exc).__name__
    return {
        "type": type(exc).__name__,
        "module": type(exc).__module__,
        "message": message,
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }


def invoke(target: str, fn: str, request_json: str, log_path: str | None = None, on_event: Any = None) -> str:
    """Run ``target.fn(request)`` and return its JSON-encoded outcome.

    ``target`` is a module name (``dpo_sweep_worker.facade``) or an absolute ``.py`` path.  ``fn``
    receives the decoded request (a dict) and returns something JSON-able; it reports progress with
    ``host.emit(event)``, which forwards to ``on_event`` (a JavaScript function) as JSON text.
    (Named ``invoke`` because pythonia treats a proxy attribute called ``call`` specially.)
    """
    global _emit
    clear_stop()
    _emit = on_event
    _in_call.set()
    try:
        with _Redirect(log_path):
            try:
                request = json.loads(request_json) if request_json else {}
                function = getattr(_load(target), fn)
                result = function(request)
                return to_json({"ok": True, "result": result})
            except BaseException as exc:  # noqa: BLE001 - the whole point: nothing escapes
                traceback.print_exc()
                return to_json({"ok": False, "error": _error(exc)})
    finally:
        _emit = None
        _in_call.clear()


def ping() -> str:
    return to_json({"ok": True, "result": {"pid": os.getpid(), "python": sys.executable}})


_install_watchdog()
_install_signal_handlers()

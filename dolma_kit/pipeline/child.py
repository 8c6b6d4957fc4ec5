"""Each stage of `dolma-kit run` in a process of its own, so its memory goes back to the system when it ends.

In one process the chain's memory only grew: what a stage imported (torch for `train`, fastText, tokenizers) and
what the allocator kept from its peak stayed for every stage after it (the report stage of the demo peaked at
535 MB against 181 MB run alone). Now the pipeline's process only plans and records; each stage runs in a fresh
child (`spawn`: the parent may hold threads, and a fresh interpreter starts from nothing) that rebuilds the stage
from the registry by name, runs it with the config the pipeline resolved, and sends back its `Outcome`.

What the user sees is unchanged. On a terminal the child writes to it directly (progress bars live); otherwise
(a log, a test's captured output) its stdout and stderr come back through the pipe and are written where the
parent's go. A `DolmaKitError` (or any error that pickles) is raised again in the parent with its message;
SIGINT / SIGTERM reach the child (the parent passes them on), which ends its workers and says how far it got,
and the parent exits with that line as a stage run in-process would. The child dies with a SIGKILLed parent.

A stage that runs on Ray stays in the parent: it keeps the one connection to the cluster the whole run shares,
and its work's memory lives in Ray's workers, not here.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import pickle
import signal
import sys
import traceback
from typing import Any, NoReturn

from rich.console import Console

from dolma_kit.errors import DolmaKitError
from dolma_kit.executor.local import STOP_SIGNALS, Interrupted, stop_on_signals
from dolma_kit.stages import Outcome, find_stage

_PR_SET_PDEATHSIG = 1
STOP_WAIT_SECONDS = 30.0
"""After passing a signal on: how long the child may take to end its workers and report."""


#: set to 1 to run every stage in the pipeline's own process, as before (a debugger, bench/startup.py --pipeline)
IN_PROCESS_VARIABLE = "DOLMA_KIT_STAGES_IN_PROCESS"


def in_child(config: Any) -> bool:
    """Whether a stage with `config` runs in a child process (not when it runs on Ray)."""
    if os.environ.get(IN_PROCESS_VARIABLE) == "1":
        return False
    executor = getattr(config, "executor", None)
    return getattr(executor, "kind", "local") != "ray"


class _Relay:
    """A text stream whose writes go to the parent as ("out" | "err", text) messages."""

    def __init__(self, conn: Any, kind: str) -> None:
        self.conn, self.kind = conn, kind

    def write(self, text: str) -> int:
        if text:
            self.conn.send((self.kind, text))
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def _child(conn: Any, name: str, config: Any, force: bool, width: int | None, relay: bool) -> None:
    """The child's body: run stage `name` and send ("done", outcome) or what stopped it."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if relay:
        sys.stdout, sys.stderr = _Relay(conn, "out"), _Relay(conn, "err")  # type: ignore[assignment]
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    try:
        with stop_on_signals():
            stage = find_stage(name)
            assert stage is not None, name
            console = Console(width=width) if width else Console()
            outcome = stage.execute(config, console, force=force)
        conn.send(("done", outcome))
    except Interrupted as exc:
        conn.send(("interrupted", exc.signum, str(exc)))
    except BaseException as exc:  # sent whole when it pickles, else as text with the child's traceback
        text = "".join(traceback.format_exception(exc))
        try:
            payload = pickle.dumps(exc)
        except Exception:
            payload = None
        conn.send(("error", payload, str(exc), text))
    finally:
        conn.close()


def run_in_child(name: str, config: Any, console: Console, *, force: bool) -> Outcome:
    """Run stage `name` with `config` in a fresh process; its `Outcome`, or what it raised."""
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    relay = not console.is_terminal
    width = console.width if not console.is_terminal else None
    proc = ctx.Process(target=_child, args=(send, name, config, force, width, relay), daemon=False)
    with _held():
        proc.start()
    send.close()
    try:
        return _collect(receive, proc, name)
    except (KeyboardInterrupt, Interrupted) as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        return _stop(receive, proc, name, signum)
    finally:
        proc.join(timeout=STOP_WAIT_SECONDS)
        if proc.is_alive():
            proc.kill()
            proc.join()


@contextlib.contextmanager
def _held() -> Any:
    """SIGINT / SIGTERM held while the child starts (it unblocks them once its handlers are in place)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _collect(receive: Any, proc: Any, name: str) -> Outcome:
    while True:
        try:
            message = receive.recv()
        except EOFError:
            proc.join()
            code = proc.exitcode
            how = f"signal {-code} ({signal.Signals(-code).name})" if code and code < 0 else f"exit {code}"
            raise DolmaKitError(
                f"stage '{name}': its process died ({how}; out of memory? killed?); finished shards are kept: "
                "re-run to resume"
            ) from None
        kind = message[0]
        if kind in ("out", "err"):
            stream = sys.stdout if kind == "out" else sys.stderr
            stream.write(message[1])
            stream.flush()
        elif kind == "done":
            return message[1]
        elif kind == "interrupted":
            raise Interrupted(message[1], message[2])
        else:
            _, payload, text, child_traceback = message
            exc = _unpickled(payload)
            if isinstance(exc, BaseException):
                if not isinstance(exc, DolmaKitError):
                    exc.add_note(f"in the process of stage '{name}':\n{child_traceback}")
                raise exc
            raise RuntimeError(f"stage '{name}' failed: {text}\n{child_traceback}")


def _unpickled(payload: bytes | None) -> Any:
    if payload is None:
        return None
    try:
        return pickle.loads(payload)
    except Exception:
        return None


def _stop(receive: Any, proc: Any, name: str, signum: int) -> NoReturn:
    """The parent was signalled: pass it on (a terminal's Ctrl-C reached the child already), wait for the child's
    own line ("interrupted: N of M shards done, re-run to resume") and raise `Interrupted` with it."""
    with contextlib.suppress(ProcessLookupError):
        if proc.pid is not None:
            os.kill(proc.pid, signal.SIGTERM if signum == signal.SIGTERM else signal.SIGINT)
    message = f"interrupted during stage '{name}'"
    while receive.poll(STOP_WAIT_SECONDS):
        try:
            _collect(receive, proc, name)  # returns or raises once the child has reported or died
        except Interrupted as exc:
            message = str(exc)
        except Exception:
            pass
        break
    raise Interrupted(signum, message)

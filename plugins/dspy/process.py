"""One DSPy program loaded in a sandboxed process (plugins/sandbox/launch.py:
bubblewrap or a plain process, empty environment, rlimits, its own session),
talking JSON lines with runner.py. A call past its time limit kills the
process: the work stops, and the process is never reused."""

from __future__ import annotations

import concurrent.futures
import json
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mlflow_hokusai.plugins.sandbox import launch

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runner.py")
# bwrap's --die-with-parent ends the child when the *thread* that started it
# ends; a batch's threads end with the batch, so programs are started from
# this one thread, which lives as long as the server worker.
_SPAWNER = concurrent.futures.ThreadPoolExecutor(1, "hokusai-dspy-spawner")
MAX_LINE_BYTES = 16 * 2**20
_CLOSED = object()
# The "op" of an LM answer on the lines queue: no object the child's JSON
# decodes to, so the child cannot forge one.
_LM_ANSWER = object()


class ProgramFailed(Exception):
    """The process could not load the program, died, or was stopped."""


class TimedOut(ProgramFailed):
    pass


class ProgramProcess:
    def __init__(self, model_dir: Path, sandbox: str, *, memory_mb: int,
                 load_timeout: float, lm_model: str | None = None):
        self.job = tempfile.mkdtemp(prefix="hokusai-dspy-")
        os.makedirs(os.path.join(self.job, "out"))
        shutil.copytree(model_dir, os.path.join(self.job, "model"))
        args = ("--server-lm", lm_model) if lm_model else ()
        # CPU seconds are bounded per call by the wall clock; this cap only
        # ends a process that spins for a day.
        try:
            self.child = _SPAWNER.submit(
                launch.start, sandbox, self.job, cpu_seconds=86_400, memory_mb=memory_mb,
                script=RUNNER, files=(), args=args, pipes=True).result()
        except launch.Stopped as stopped:
            shutil.rmtree(self.job, ignore_errors=True)
            raise ProgramFailed(stopped.reason) from None
        self.sandbox = sandbox
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name="hokusai-dspy-reader").start()
        try:
            ready = self._next(time.monotonic() + load_timeout, "loading the program")
        except ProgramFailed:
            self.stop()
            raise
        if ready.get("op") != "ready":
            self.stop()
            raise ProgramFailed(f"the program could not be loaded: {ready.get('error')}")
        self.description = {key: ready.get(key)
                            for key in ("signatures", "input_fields", "description")}

    def _read(self) -> None:
        stream = self.child.stdout
        assert stream is not None  # started with stdout=PIPE
        while True:
            line = stream.readline(MAX_LINE_BYTES + 1)
            if not line or len(line) > MAX_LINE_BYTES:
                break
            try:
                message = json.loads(line)
            except ValueError:
                break
            self.lines.put(message if isinstance(message, dict) else {})
        self.lines.put(_CLOSED)

    def _next(self, deadline: float, doing: str) -> dict:
        try:
            message = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            self.stop()
            raise TimedOut(f"{doing} ran past its time limit; the program's process was "
                           "stopped") from None
        if message is _CLOSED:
            self.stop()
            raise ProgramFailed(f"the program's process ended while {doing} (memory limit, "
                                "or a crash in the program's code)")
        return message

    def _send(self, message: dict) -> None:
        assert self.child.stdin is not None  # started with stdin=PIPE
        try:
            self.child.stdin.write((json.dumps(message) + "\n").encode())
            self.child.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass  # the reader sees the end and says so

    def run(self, inputs: dict, timeout: float,
            call_lm: Callable[[dict, float], dict] | None = None) -> dict:
        """``{"outputs", "trace"}`` or ``{"error"}`` of one run; TimedOut or
        ProgramFailed when the process is stopped or dies (then it is gone).

        An LM call is made on a thread of its own, with the time left, and
        its answer comes back through the lines queue: the deadline holds
        while a slow LM is being waited for."""
        deadline = time.monotonic() + timeout
        self._send({"op": "run", "inputs": inputs})
        while True:
            message = self._next(deadline, "running the program")
            if message.get("op") is _LM_ANSWER:
                self._send(message["answer"])
            elif message.get("op") == "lm":
                threading.Thread(target=self._call_lm, daemon=True, name="hokusai-dspy-lm",
                                 args=(call_lm, message.get("request"), deadline)).start()
            elif message.get("op") == "result":
                return message

    def _call_lm(self, call_lm, request, deadline: float) -> None:
        answer = _lm_answer(call_lm, request, max(0.001, deadline - time.monotonic()))
        self.lines.put({"op": _LM_ANSWER, "answer": answer})

    @property
    def alive(self) -> bool:
        return self.child.poll() is None

    def stop(self) -> None:
        launch.kill(self.child)
        for stream in (self.child.stdin, self.child.stdout):
            assert stream is not None  # started with both piped
            try:
                stream.close()
            except OSError:
                pass
        shutil.rmtree(self.job, ignore_errors=True)


def _lm_answer(call_lm, request, timeout: float) -> dict:
    if call_lm is None or not isinstance(request, dict):
        return {"op": "lm", "error": "no language model is configured on the server"}
    try:
        return {"op": "lm", "response": call_lm(request, timeout)}
    except Exception as exc:  # noqa: BLE001 - the program sees the LM's failure
        return {"op": "lm", "error": f"{type(exc).__name__}: {exc}"[:1000]}

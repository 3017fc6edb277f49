"""Start the runner (runner.py) in a child process under the sandbox's limits.

Modes (``HOKUSAI_SANDBOX_MODE``):

- ``bwrap``: bubblewrap. New network namespace with no interface but loopback
  (``--unshare-net``), new PID/IPC/UTS namespaces, every capability dropped,
  and a filesystem of its own: the interpreter and its site-packages read-only,
  the job's model and features read-only, a private ``/tmp`` and the job's
  ``out`` directory writable; nothing else of the host is visible.
- ``process``: a plain child process in the job directory, in a new network
  namespace when ``unshare`` can make one (``process`` then says so in the
  answer's ``sandbox`` field as ``process+netns``); it can read whatever the
  server's user can read and write wherever that user can.
- ``auto`` (default): ``bwrap`` when it is installed and works, else ``process``.

Both: an empty environment (no variable of the server's reaches it), resource
limits set with ``setrlimit`` before exec (address space, CPU seconds, file
size, no core files), a wall-clock limit after which the whole process group is
killed, and its own session so it cannot signal the server.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runner.py")
MAX_FILE_BYTES = 512 * 2**20
# Host paths the interpreter needs, shown read-only inside bwrap.
SYSTEM_PATHS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc/ld.so.cache",
                "/etc/alternatives")


class Stopped(Exception):
    """The child was stopped at a limit (``reason`` says which) or failed to start."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _limits(memory_bytes: int, cpu_seconds: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def _interpreter_paths() -> list[str]:
    """The interpreter's installation and the environment's site-packages."""
    paths = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    paths |= {os.path.realpath(p) for p in sys.path
              if p and os.path.isdir(p) and "site-packages" in p}
    return sorted(paths)


def _bwrap_command(job: str, python: str, script: str, files: tuple[str, ...],
                   args: tuple[str, ...]) -> list[str]:
    command = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
               "--cap-drop", "ALL", "--clearenv", "--proc", "/proc", "--dev", "/dev",
               "--tmpfs", "/tmp", "--dir", "/job"]
    for path in SYSTEM_PATHS:
        if os.path.islink(path):
            command += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            command += ["--ro-bind", path, path]
    for path in _interpreter_paths():
        command += ["--ro-bind", path, path]
    command += ["--ro-bind", os.path.join(job, "model"), "/job/model"]
    for name in files:
        command += ["--ro-bind", os.path.join(job, name), f"/job/{name}"]
    command += ["--ro-bind", script, "/job/runner.py",
                "--bind", os.path.join(job, "out"), "/job/out",
                "--chdir", "/tmp", "--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp"]
    return [*command, python, "-I", "-B", "/job/runner.py", "/job", *args]


@functools.cache
def _works(command: tuple[str, ...]) -> bool:
    try:
        return subprocess.run(command, env={}, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def bwrap_available() -> bool:
    return shutil.which("bwrap") is not None and _works(
        ("bwrap", "--unshare-all", "--ro-bind", "/", "/", "--cap-drop", "ALL", "true"))


def netns_available() -> bool:
    return shutil.which("unshare") is not None and _works(
        ("unshare", "--net", "--map-root-user", "true"))


def mode(wanted: str) -> str:
    if wanted == "auto":
        wanted = "bwrap" if bwrap_available() else "process"
    if wanted == "process" and netns_available():
        return "process+netns"
    return wanted


def command(sandbox: str, job: str, python: str, script: str = RUNNER,
            files: tuple[str, ...] = ("features.parquet",),
            args: tuple[str, ...] = ()) -> tuple[list[str], str]:
    """(argv, working directory) of ``script`` (the runner by default) in
    ``sandbox`` mode; ``files`` of the job are shown to it read-only."""
    if sandbox == "bwrap":
        return _bwrap_command(job, python, script, files, args), job
    argv = [python, "-I", "-B", script, job, *args]
    if sandbox == "process+netns":
        argv = ["unshare", "--net", "--map-root-user", *argv]
    return argv, job


def start(sandbox: str, job: str, *, cpu_seconds: int, memory_mb: int,
          python: str = sys.executable, script: str = RUNNER,
          files: tuple[str, ...] = ("features.parquet",), args: tuple[str, ...] = (),
          pipes: bool = False) -> subprocess.Popen:
    """Start ``script`` on ``job`` under the sandbox's limits, in a session of
    its own (``kill`` ends its whole group); with ``pipes``, its stdin and
    stdout are pipes to the caller (a long-lived child answering requests)."""
    argv, cwd = command(sandbox, job, python, script, files, args)
    argv[0] = shutil.which(argv[0]) or argv[0]  # the child gets no PATH
    stream = subprocess.PIPE if pipes else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            argv, cwd=cwd, env={"HOME": job, "TMPDIR": job} if sandbox != "bwrap" else {},
            stdin=stream, stdout=stream, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True,
            preexec_fn=_limits(memory_mb * 2**20, cpu_seconds))
    except OSError as exc:
        raise Stopped(f"the sandbox could not start ({exc.strerror})") from None


def run(sandbox: str, job: str, *, timeout_seconds: float, memory_mb: int,
        python: str = sys.executable, clock=time.monotonic) -> int:
    """Run the runner on ``job``; its exit status, or Stopped at a limit."""
    started = clock()
    child = start(sandbox, job, cpu_seconds=int(timeout_seconds) + 1, memory_mb=memory_mb,
                  python=python)
    try:
        status = child.wait(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        kill(child)
        raise Stopped(f"the evaluation ran past the time limit of {timeout_seconds:g} s "
                      "and was stopped") from None
    finally:
        kill(child)  # whatever it left behind in its group
    if status < 0:
        name = signal.Signals(-status).name
        if -status == signal.SIGXCPU or clock() - started >= timeout_seconds:
            raise Stopped(f"the evaluation ran past the time limit and was stopped ({name})")
        raise Stopped(f"the evaluation was stopped by {name} (memory limit "
                      f"{memory_mb} MiB, or a crash in the model's code)")
    return status


def kill(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    child.wait()

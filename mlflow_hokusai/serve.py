"""``make serve``: one server on this machine, started the way a first-time user
needs it.

- A busy port fails at once, naming the port and ``PORT=``.
- The server's log goes to a file in the data directory; the terminal shows a
  progress line while it starts, then one box (the URL, the first admin key or
  how to mint a new one) that no log line scrolls away. The key is only ever
  printed here: it is in no log file.
- Stopping takes about a second. The server runs in a session of its own, so a
  Ctrl+C reaches this process only, which stops the server's whole process
  group with SIGTERM. A SIGINT would reach MLflow's Huey job consumers too, and
  SIGINT is Huey's *graceful* stop: each consumer waits for its workers' polling
  sleep (up to Huey's 10 s maximum delay) while MLflow's job runner restarts
  consumers that exit, until its watcher notices the server is gone (16-40 s on
  a busy machine). SIGTERM is Huey's immediate stop; MLflow enqueues unfinished
  jobs again on the next start. Whatever is left after STOP_GRACE_SECONDS is
  killed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

# After SIGTERM, what still runs is killed: uvicorn may be waiting on a worker
# still importing MLflow, the `mlflow server` parent on its own teardown; the
# audit spool of a killed worker is replayed at the next start.
STOP_GRACE_SECONDS = 5
START_TIMEOUT_SECONDS = 600
PROGRESS_EVERY_SECONDS = 15
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Refused(Exception):
    """A problem the person starting the server can fix; one line, exit 1."""


def port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on ``host:port``, checked the way uvicorn
    binds (SO_REUSEADDR, so a socket in TIME_WAIT is no obstacle)."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        return f"HOST={host} is not an address of this machine ({error.strerror})"
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as error:
                return (f"Port {port} on {host} is not free ({error.strerror}); "
                        f"stop what uses it or pick another: make serve PORT={port + 1}")
    return None


def _loopback(host: str) -> str:
    """Where a browser on this machine reaches a server bound to ``host``."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def session_secret(data: Path) -> str:
    """Made once, kept with the data, readable by this account only."""
    path = data / "session-secret"
    if not path.exists() or not path.read_text().strip():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def first_admin_key(database_url: str) -> str | None:
    """A new admin key's plaintext if the database has no key yet, else None."""
    from mlflow_hokusai.cli import open_keystore
    from mlflow_hokusai.plugins.auth import scopes

    store = open_keystore(database_url, must_exist=False)
    if store.count():
        return None
    return store.create("admin", scopes=scopes.ALL)[1]


def box(lines: list[str]) -> str:
    width = max(len(line) for line in lines)
    rule = "+" + "-" * (width + 2) + "+"
    return "\n".join([rule, *(f"| {line.ljust(width)} |" for line in lines), rule])


def welcome(url: str, key: str | None, database_url: str, log: Path) -> str:
    if key is not None:
        about_key = ["Your first admin key (shown this once; store it now):", "", f"  {key}", "",
                     f"Open {url} and log in with it."]
    else:
        about_key = [f"Open {url} and log in with your admin key.",
                     "Lost it? Mint a new one (the server may keep running):",
                     f"  {Path(sys.executable).parent / 'hokusai'} keys create --name admin2 \\",
                     f"      --scopes admin --database-uri {database_url}"]
    return box([f"Hokusai is serving {url}", "", *about_key, "",
                f"Server log: tail -f {log}", "Stop: Ctrl+C"])


class Server:
    def __init__(self, command: list[str], env: dict[str, str], log: Path, port: int):
        self.log, self.port = log, port
        with open(log, "ab") as out:
            # cwd: uvicorn and gunicorn put their working directory first on
            # sys.path, so started from a checkout the workers would import the
            # checkout's mlflow_hokusai (without its plugins) over the installed one.
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            cwd=log.parent)
        self.stopping: float | None = None  # when a stop was asked for
        self.tree: list[psutil.Process] = []

    def listens(self) -> bool:
        """Whether this server holds the port: another one started at the same
        time on the same port would answer the health check too."""
        try:
            tree = [psutil.Process(self.process.pid),
                    *psutil.Process(self.process.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return False
        for process in tree:
            with contextlib.suppress(psutil.Error):
                if any(c.status == psutil.CONN_LISTEN and c.laddr.port == self.port
                       for c in process.net_connections("tcp")):
                    return True
        return False

    def answers(self, url: str) -> bool:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # an unhealthy answer is an answer: the log says why
        except OSError:
            return False

    def wait_until_answering(self, url: str) -> None:
        started = last_note = time.monotonic()
        while not (self.listens() and self.answers(url)):
            if self.process.poll() is not None:
                if self.stopping:
                    return
                raise Refused(self.exit_story())
            now = time.monotonic()
            if now - started > START_TIMEOUT_SECONDS:
                raise Refused(f"The server did not answer in {START_TIMEOUT_SECONDS} s; "
                              f"see {self.log}")
            if now - last_note >= PROGRESS_EVERY_SECONDS:
                print(f"  still starting ({now - started:.0f} s)...", flush=True)
                last_note = now
            time.sleep(0.5)

    def exit_story(self) -> str:
        tail = self.log.read_text(errors="replace").splitlines()[-15:]
        if any("address already in use" in line.lower() for line in tail):
            return (f"Port {self.port} was taken while the server started; pick another: "
                    f"make serve PORT={self.port + 1}")
        return (f"The server exited (code {self.process.returncode}); the end of {self.log}:\n"
                + "\n".join(tail))

    def stop(self, *_signal) -> None:
        """SIGTERM to the server's process group (see the module docstring)."""
        if self.stopping or self.process.poll() is not None:
            return
        self.stopping = time.monotonic()
        # Every process the server started, also those in sessions of their own
        # (MLflow's local job executor), as they are now.
        self.tree = [psutil.Process(self.process.pid),
                     *psutil.Process(self.process.pid).children(recursive=True)]
        print("Stopping the server...", flush=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)

    def wait(self) -> int:
        """The server's exit code, or 0 once it is stopped on request."""
        while not self.stopping:
            with contextlib.suppress(subprocess.TimeoutExpired):
                return self.process.wait(timeout=0.5)
        while running(self.tree) and time.monotonic() < self.stopping + STOP_GRACE_SECONDS:
            time.sleep(0.1)
        for process in running(self.tree):
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # any started after the snapshot
        self.process.wait()
        return 0


def running(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those not yet exited (a zombie has: its parent has not reaped it yet)."""
    alive = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
    return alive


def serve(data: Path, host: str, port: int, workers: int) -> int:
    problem = port_problem(host, port)
    if problem:
        raise Refused(problem)
    data.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{data}/mlflow.db"
    log = data / "server.log"
    env = {# MLflow's job runner imports LiteLLM, which fetches its model cost map
           # from GitHub with retries: a start offline waited on them. Its bundled
           # copy serves a first run; the variable set by the user wins.
           "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           **os.environ, "HOKUSAI_SESSION_SECRET": session_secret(data),
           # The audit spool lives with the data (not in a temp dir a reboot may empty).
           "HOKUSAI_AUDIT_SPOOL_DIR": str(data / "audit-spool")}
    command = [str(Path(sys.executable).parent / "mlflow"), "server", "--app-name", "hokusai",
               "--host", host, "--port", str(port), "--workers", str(workers),
               "--backend-store-uri", database_url,
               "--artifacts-destination", f"hokusai+file://{data}/artifacts"]
    url = f"http://{_loopback(host)}:{port}"
    print(f"Starting the server on {url} (log: {log})...", flush=True)
    server = Server(command, env, log, port)
    for number in _STOP_SIGNALS:
        signal.signal(number, server.stop)
    try:
        server.wait_until_answering(url)
        if not server.stopping:
            # Minted only now: a key shown to no one (a server that never started)
            # would make the next run say "lost it?".
            print(welcome(url, first_admin_key(database_url), database_url, log), flush=True)
    except BaseException:
        # The server runs in a session of its own: whatever failed here, it
        # must not outlive this process holding the port.
        server.stop()
        server.wait()
        raise
    code = server.wait()
    if code:
        print(server.exit_story(), file=sys.stderr)
    return code


def run(data: Path, host: str, port: int, workers: int) -> int:
    """``hokusai serve``: the exit code, a refusal said in one line."""
    try:
        return serve(data.resolve(), host, port, workers)
    except Refused as problem:
        print(f"hokusai serve: {problem}", file=sys.stderr)
        return 1

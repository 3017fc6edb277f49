"""A throwaway PostgreSQL cluster in a temp dir, for outage tests: the shared
server on 5432 is never stopped or reconfigured."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time

from tests.support.servers import free_port


def _bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    if not initdb:
        raise RuntimeError("PostgreSQL server binaries (initdb) not found")
    return os.path.dirname(initdb)


class PostgresCluster:
    def __init__(self):
        self.bindir = _bindir()
        self.root = tempfile.mkdtemp(prefix="hokusai-pg-")
        self.data = os.path.join(self.root, "data")
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = os.path.join(self.root, "postgres.log")
        # PostgreSQL refuses to run as root: run it as the postgres user then,
        # as a direct child, so that this process reaps the killed postmaster
        # (a zombie's pid would look like a live postmaster to the restart).
        self.user = {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}
        if self.user:
            shutil.chown(self.root, "postgres")
        subprocess.run([f"{self.bindir}/initdb", "-D", self.data, "-A", "trust", "-U", "postgres"],
                       check=True, capture_output=True, **self.user)

    @property
    def uri(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> PostgresCluster:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [f"{self.bindir}/postgres", "-D", self.data, "-p", str(self.port),
                 "-k", self.root, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True, **self.user)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = subprocess.run([f"{self.bindir}/pg_isready", "-h", "127.0.0.1", "-p",
                                    str(self.port), "-U", "postgres"], capture_output=True)
            if ready.returncode == 0:
                return self
            time.sleep(0.2)
        with open(self.log_path, errors="replace") as log:
            raise RuntimeError("throwaway PostgreSQL did not start:\n" + log.read()[-2000:])

    def stop(self) -> None:
        """An abrupt outage: the postmaster and its backends are killed."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            # Backends die with the postmaster; give the port a moment to close.
            time.sleep(0.5)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

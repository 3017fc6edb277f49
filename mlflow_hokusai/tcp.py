"""Nagle's algorithm off on the sockets uvicorn serves from.

asyncio turns it off (``TCP_NODELAY``) only on connections of listening
sockets it created itself (``proto == IPPROTO_TCP``). Uvicorn serving from
sockets bound elsewhere (``--workers`` > 1, as ``mlflow server`` runs it, or
``--fd``, as the model workers run) leaves it on, and an answer written in two
parts (headers, then body) then waits for the client's delayed ACK: 40 ms on
every request on Linux (measured here: 44 ms for ``GET /health`` on a
two-worker server, under 1 ms with this). Linux copies ``TCP_NODELAY`` from a
listening socket to each connection it accepts, so it is set on the listening
socket, once.
"""

from __future__ import annotations

import logging
import os
import socket
import stat

_logger = logging.getLogger(__name__)


def no_delay(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def no_delay_on_listening_sockets() -> int:
    """Set it on every TCP socket this process serves from (a uvicorn worker
    holds the one its parent bound); how many there were."""
    try:
        descriptors = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: not Linux, where the copy to connections is not known
        _logger.info("No /proc/self/fd: TCP_NODELAY not set on the listening sockets")
        return 0
    count = 0
    for descriptor in descriptors:
        try:
            if not stat.S_ISSOCK(os.fstat(descriptor).st_mode):
                continue
            # A duplicate: the option is the shared socket's; closing it closes nothing else.
            sock = socket.socket(fileno=os.dup(descriptor))
        except OSError:  # closed meanwhile (the listing's own descriptor), or not a socket
            continue
        with sock:
            try:
                if sock.family in (socket.AF_INET, socket.AF_INET6) and \
                        sock.type == socket.SOCK_STREAM and _serving(sock):
                    no_delay(sock)
                    count += 1
            except OSError:
                continue
    _logger.debug("TCP_NODELAY set on %d listening socket(s)", count)
    return count


def _serving(sock: socket.socket) -> bool:
    """Listening, or bound and not connected: uvicorn's parent binds the
    socket and each worker starts listening on it only once its app is loaded.
    (A client's non-blocking connect still in progress looks the same; it is
    called before the app opens any, and Nagle off harms no client anyway.)"""
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        return True
    if sock.getsockname()[1] == 0:
        return False
    try:
        sock.getpeername()
    except OSError:
        return True
    return False

"""The embedded broker (kombu's SQLAlchemy transport on SQLite), woken up instead of polled.

kombu's transport finds a new message only by polling its table, by default once a second: a
job posted to an idle embedded worker waited for the next poll. Here every process that
publishes (the API, the beat, the worker itself) sends, right after the message is committed,
one datagram to each consumer's UNIX socket in ``<broker.db>.wake/``; a consuming worker waits
on its socket between polls, so it looks at the table as soon as something arrived.

The datagram only says "look now": the message itself is in the database as before, so a
wake-up that is lost (socket path too long, a consumer that started late, a full buffer) costs
at most one poll interval (``ATELIER_BROKER_POLL_INTERVAL_S``), never a message. A socket left
by a consumer that died is removed by the next publisher that cannot reach it.
"""

from __future__ import annotations

import logging
import os
import secrets
import select
import socket
from pathlib import Path
from queue import Empty
from time import monotonic
from typing import Any

from kombu.transport import sqlalchemy as sqla
from sqlalchemy.engine import make_url

from app.core.settings import get_settings

log = logging.getLogger("atelier.broker_wake")
WAKE_SUFFIX = ".wake"


def wake_dir(broker_hostname: str) -> Path | None:
    """Where the consumers' sockets live for this SQLite broker URL; None: not a file DB."""
    try:
        url = make_url(broker_hostname)
    except Exception:  # not a URL we understand: plain polling
        return None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    db = Path(url.database).resolve()  # type: ignore[arg-type]
    return db.parent / (db.name + WAKE_SUFFIX)


def wake_consumers(folder: Path) -> int:
    """Send one wake-up to every consumer socket in ``folder``; returns how many got one.
    Never blocks and never fails the publish: the message is already stored."""
    try:
        paths = [p for p in folder.iterdir() if p.suffix == ".sock"]
    except OSError:
        return 0
    woken = 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for path in paths:
            try:
                sock.sendto(b"!", str(path))
                woken += 1
            except (ConnectionRefusedError, FileNotFoundError):
                path.unlink(missing_ok=True)  # its consumer is gone
            except OSError:  # buffer full (wake-ups already pending) or path too long
                pass
    return woken


class Channel(sqla.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        super()._put(queue, payload, **kwargs)  # committed when this returns
        self.connection.wake()


class Transport(sqla.Transport):
    """kombu's SQLAlchemy transport whose consumer sleeps on a socket instead of a timer."""

    Channel = Channel

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        # From the settings, not a transport option: kombu hands those all to create_engine.
        self.polling_interval = get_settings().broker_poll_interval_s
        self.wake_dir = wake_dir(client.hostname or "")
        self._sock: socket.socket | None = None
        self._sock_path: Path | None = None
        self._listen_failed = False
        self._next_poll = 0.0

    def wake(self) -> None:
        if self.wake_dir is not None:
            wake_consumers(self.wake_dir)

    def _listen(self) -> socket.socket | None:
        """This consumer's socket, bound on first use (publish-only processes never bind)."""
        if self._sock is not None or self._listen_failed or self.wake_dir is None:
            return self._sock
        path = self.wake_dir / f"{os.getpid()}-{secrets.token_hex(4)}.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.wake_dir.mkdir(mode=0o700, exist_ok=True)
            sock.bind(str(path))
        except OSError as exc:
            sock.close()
            self._listen_failed = True
            log.warning("broker wake-up socket unavailable (%s); polling every %s s instead",
                        exc, self.polling_interval)
            return None
        sock.setblocking(False)
        self._sock, self._sock_path = sock, path
        return sock

    def _woken(self) -> bool:
        """Read every pending wake-up; True if there was any."""
        assert self._sock is not None
        woken = False
        while True:
            try:
                self._sock.recv(64)
                woken = True
            except (BlockingIOError, InterruptedError):
                return woken

    def drain_events(self, connection: Any, timeout: float | None = None) -> None:
        sock = self._listen()
        if sock is None:
            super().drain_events(connection, timeout=timeout)
            return
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            now = monotonic()
            if self._woken() or now >= self._next_poll:
                self._next_poll = now + self.polling_interval
                try:
                    self.cycle.get(self._deliver, timeout=timeout)
                except Empty:
                    pass
                else:
                    self._next_poll = 0.0  # more may be waiting: look again next call
                    return
            if deadline is not None and monotonic() >= deadline:
                raise TimeoutError("no message")  # socket.timeout: what Celery's loop expects
            until = self._next_poll if deadline is None else min(self._next_poll, deadline)
            select.select([sock], [], [], max(0.0, until - monotonic()))

    def close_connection(self, connection: Any) -> None:
        super().close_connection(connection)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            if self._sock_path is not None:
                self._sock_path.unlink(missing_ok=True)

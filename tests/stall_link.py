"""A TCP link in front of a simulated meter that can stall: while stalled it takes
connections and swallows what the bridge sends, answering nothing (a meter whose modem hung
mid-association); once let through it relays new connections to the meter. For the recovery
tests and the fault benchmark: a bridge is killed while its job hangs on such a meter. It can
also refuse (close each new connection at once): in front of Odoo, a bridge cut off from it
while others reach it."""

from __future__ import annotations

import contextlib
import socket
import threading


class StallLink:
    def __init__(self, target_port: int, host: str = "127.0.0.1"):
        self.target = (host, target_port)
        self.stalled = threading.Event()
        self.refusing = threading.Event()
        self.stalled_connections = 0  # connections that met a stall (a bridge reached it)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="stall-link", daemon=True).start()

    def stall(self, on: bool = True) -> None:
        """Stall connections made from now on (those already relayed go on)."""
        if on:
            self.stalled.set()
        else:
            self.stalled.clear()

    def refuse(self, on: bool = True) -> None:
        """Close connections made from now on at once, unanswered (those relayed go on)."""
        if on:
            self.refusing.set()
        else:
            self.refusing.clear()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _keep(self, sock):
        with self._lock:
            self._open.append(sock)

    def _accept(self):
        while not self._closed:
            try:
                conn, _addr = self._listener.accept()
            except OSError:
                return
            if self.refusing.is_set():
                with contextlib.suppress(OSError):
                    conn.close()
                continue
            self._keep(conn)
            if self.stalled.is_set():
                with self._lock:
                    self.stalled_connections += 1
                threading.Thread(target=self._swallow, args=(conn,), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                conn.close()
                continue
            upstream.settimeout(None)
            self._keep(upstream)
            for src, dst in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _swallow(conn):
        with contextlib.suppress(OSError):
            while conn.recv(4096):
                pass
        with contextlib.suppress(OSError):
            conn.close()

    @staticmethod
    def _pipe(src, dst):
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

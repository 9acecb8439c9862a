"""The collector's HTTP server: uvicorn on a background thread, with the limits a service on a
network needs and uvicorn does not set by itself.

* **Header timeout.** uvicorn closes idle keep-alive connections but waits forever for the
  headers of a request that started; a client that sends a byte a minute (slowloris) would
  hold a connection slot for good. :class:`_GuardedProtocol` closes a connection whose request
  headers did not arrive within ``header_timeout_s``, and one whose headers exceed
  ``max_header_bytes``.
* **Bounded concurrency.** ``limit_concurrency`` caps connections and in-flight requests (503
  past it); the application bounds the work behind them (collector/app.py).
* **TLS** from a certificate and key file, on every endpoint.
* **Graceful stop.** :meth:`HttpServer.stop` stops accepting, lets requests in flight finish
  (bounded), then returns; the caller then drains what they queued.

The listening socket is bound in :meth:`HttpServer.start`, on the caller's thread, so a port in
use fails there with :class:`OSError` and ``port=0`` has its real port at once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HttpServer", "ServerLimits", "TlsFiles", "TlsError"]

log = logging.getLogger("lambdascope.collector")


class TlsError(Exception):
    """The certificate or key cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class TlsFiles:
    cert_file: Path
    key_file: Path

    def check(self) -> None:
        """Load the pair once, so a wrong file stops the start with a clear message."""
        for what, path in (("certificate", self.cert_file), ("key", self.key_file)):
            if not path.is_file():
                raise TlsError(f"TLS {what} file {path} does not exist or is not a file")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (ssl.SSLError, OSError) as exc:
            raise TlsError(
                f"cannot use TLS certificate {self.cert_file} with key {self.key_file}: {exc}. "
                "Pass a PEM certificate (chain) and its matching unencrypted PEM key."
            ) from None


@dataclass(frozen=True)
class ServerLimits:
    #: Connections plus requests in flight; past it new requests get 503.
    max_connections: int = 1024
    #: Pending connections the kernel queues before accept.
    backlog: int = 2048
    #: A request's headers must arrive within this long of its first byte (or the connection's).
    header_timeout_s: float = 10.0
    #: Request line plus headers; larger ones are refused with 400 and the connection closed.
    max_header_bytes: int = 64 * 1024
    #: An idle keep-alive connection is closed after this long (the extension sends about once
    #: a second per environment, so it keeps its connection).
    keep_alive_s: float = 15.0
    #: On stop, requests in flight get this long to finish.
    graceful_shutdown_s: float = 10.0


class _GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header timeout and a header size bound."""

    header_timeout_s: float = ServerLimits.header_timeout_s
    max_header_bytes: int = ServerLimits.max_header_bytes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            # Raised inside the parser's callback: uvicorn answers 400 and closes.
            raise httptools.HttpParserError(
                f"request headers larger than {self.max_header_bytes} bytes"
            )

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timed_out)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            log.debug("closing a connection whose request headers did not arrive in time")
            self.transport.close()


class HttpServer:
    """An ASGI application served by uvicorn on a background thread."""

    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        *,
        limits: ServerLimits | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        self.limits = limits or ServerLimits()
        self.tls = tls
        self.host = host
        self._requested_port = port
        protocol = type(
            "GuardedProtocol",
            (_GuardedProtocol,),
            {
                "header_timeout_s": self.limits.header_timeout_s,
                "max_header_bytes": self.limits.max_header_bytes,
            },
        )
        self._config = uvicorn.Config(
            app,
            http=protocol,
            loop="auto",
            lifespan="off",
            ws="none",
            log_config=None,
            access_log=False,
            server_header=False,
            date_header=True,
            limit_concurrency=self.limits.max_connections,
            backlog=self.limits.backlog,
            timeout_keep_alive=int(max(1, self.limits.keep_alive_s)),
            timeout_graceful_shutdown=int(max(1, self.limits.graceful_shutdown_s)),
            ssl_certfile=str(tls.cert_file) if tls else None,
            ssl_keyfile=str(tls.key_file) if tls else None,
        )
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        if self._socket is None:
            raise RuntimeError("the HTTP server is not started: call start() first")
        host, port = self._socket.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        shown = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{shown}:{port}"

    def start(self, ready_timeout_s: float = 10.0) -> None:
        """Bind, then serve on a background thread; raises OSError when the port is taken."""
        if self.tls is not None:
            self.tls.check()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(True)
        self._socket = sock
        self._config.load()
        server = uvicorn.Server(self._config)
        self._server = server
        failure: list[BaseException] = []

        def serve() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # reported to start() or logged below
                failure.append(exc)
                log.exception("the collector's HTTP server stopped unexpectedly")

        self._thread = threading.Thread(target=serve, name="lambdascope-http", daemon=True)
        self._thread.start()
        deadline = threading.Event()
        waited = 0.0
        while not server.started and waited < ready_timeout_s:
            if failure or not self._thread.is_alive():
                break
            deadline.wait(0.01)
            waited += 0.01
        if not server.started:
            self.stop()
            reason = failure[0] if failure else "it did not start in time"
            raise OSError(f"the HTTP server could not start: {reason}")

    def stop(self) -> None:
        """Stop accepting, let requests in flight finish (bounded), close the socket."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=self.limits.graceful_shutdown_s + 5.0)
            self._thread = None
        self._server = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

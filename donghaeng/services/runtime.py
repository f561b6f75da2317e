"""How every lab service runs once the hub has started it: one ``serve()`` for all of them.

JupyterHub tells a managed service where to listen in ``JUPYTERHUB_SERVICE_URL``.  Each service here
(model, home, dashboard, exchange, certificates) builds its tornado application and hands it to
:func:`run`, which listens there, waits out a port that is briefly taken (the hub gives up on the
whole lab if a managed service exits while starting), and stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from tornado import web
from tornado.httpserver import HTTPServer

log = logging.getLogger("donghaeng.service")

LISTEN_ATTEMPTS = 40
LISTEN_RETRY_S = 0.5

Hook = Callable[[], Awaitable[None]]


def service_address(default_port: int | None = None) -> tuple[str, int]:
    """``(host, port)`` of ``$JUPYTERHUB_SERVICE_URL`` (loopback and *default_port* when run by hand)."""
    raw = os.environ.get("JUPYTERHUB_SERVICE_URL")
    if not raw:
        if default_port is None:
            raise RuntimeError("JUPYTERHUB_SERVICE_URL is not set: start this service from the hub")
        return "127.0.0.1", default_port
    url = urlsplit(raw)
    if url.hostname is None or url.port is None:
        raise RuntimeError(f"JUPYTERHUB_SERVICE_URL needs a host and a port: {raw}")
    return url.hostname, url.port


async def serve(app: web.Application, *, hosts: Iterable[str] = (), started: Hook | None = None,
                stopping: Hook | None = None, default_port: int | None = None, **server_options: object) -> None:
    """Serve *app* on the service's address (and on *hosts*, same port) until SIGTERM or SIGINT.

    *started* runs once listening (e.g. start engines), *stopping* after the server stopped accepting.
    *server_options* go to tornado's ``HTTPServer`` (body size limits, ``xheaders`` …).
    """
    host, port = service_address(default_port)
    server = HTTPServer(app, **server_options)  # type: ignore[arg-type]
    for address in dict.fromkeys([host, *hosts]):
        for attempt in range(LISTEN_ATTEMPTS):
            try:
                server.listen(port, address)
                break
            except OSError as exc:
                if attempt == LISTEN_ATTEMPTS - 1:
                    raise
                log.warning("port %d on %s not free yet (%s); retrying", port, address, exc)
                await asyncio.sleep(LISTEN_RETRY_S)
    if started:
        await started()
    log.info("listening on http://%s:%d", host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
    server.stop()
    if stopping:
        await stopping()


def run(name: str, make_app: Callable[[], web.Application], *, level: str = "INFO", **options: object) -> None:
    """A service's ``main()``: log lines tagged *name*, then :func:`serve` the app *make_app* builds."""
    logging.basicConfig(level=level, format=f"[%(levelname).1s %(asctime)s {name}] %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    async def main() -> None:
        await serve(make_app(), **options)  # type: ignore[arg-type]

    asyncio.run(main())

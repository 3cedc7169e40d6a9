"""``drlim view``'s server: the explorer page and its maps' binary blobs on a loopback address (the standard
library's threading HTTP server), for maps too big to carry inline in one HTML file."""

from __future__ import annotations

import errno
import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pipeline.errors import DrlimError
from pipeline.explore.page import Encoded, page_html

log = logging.getLogger(__name__)


class MapServer:
    """Serves ``/`` (the page), ``/data/<i>/meta.json`` and ``/data/<i>/blob/<name>`` for each of ``maps``."""

    def __init__(self, maps: list[Encoded], title: str, host: str = "127.0.0.1", port: int = 8765) -> None:
        page = page_html(title, urls=[f"data/{i}/" for i in range(len(maps))]).encode()
        routes: dict[str, tuple[str, bytes]] = {"/": ("text/html; charset=utf-8", page)}
        for i, (meta, blobs) in enumerate(maps):
            routes[f"/data/{i}/meta.json"] = ("application/json", json.dumps(meta).encode())
            for name, data in blobs.items():
                routes[f"/data/{i}/blob/{name}"] = ("application/octet-stream", data)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
                found = routes.get(self.path.split("?", 1)[0])
                if found is None:
                    self.send_error(404)
                    return
                kind, body = found
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("%s " + format, self.client_address[0], *args)

        try:
            self.httpd = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise DrlimError(
                    f"port {port} on {host} is in use; choose another with --port N (--port 0: any free port)"
                ) from None
            raise DrlimError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another --host/--port") from None
        self.httpd.daemon_threads = True

    @property
    def address(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    def serve(self) -> None:
        """Answer requests until interrupted (Ctrl-C), then close the socket."""
        try:
            self.httpd.serve_forever(poll_interval=0.2)
        finally:
            self.httpd.server_close()

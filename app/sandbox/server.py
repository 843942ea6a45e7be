"""Run a sandbox WSGI app as a real HTTP server on 127.0.0.1, in a background thread.

Used by `flask dev` (make run) and by the tests, so integrations are exercised over real HTTP.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class QuietRequestHandler(WSGIRequestHandler):
    """No access log: stand-in request lines carry development secrets and ID numbers in query strings."""

    def log_request(self, code="-", size="-"):
        pass


@dataclass
class RunningServer:
    """A server started by `serve`; `url` has no trailing slash."""

    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return self.server.server_port

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(wsgi_app, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Start `wsgi_app` on host:port (0 picks a free port) in a daemon thread; returns once it listens."""
    server = make_server(host, port, wsgi_app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name=f"sandbox:{server.server_port}", daemon=True)
    thread.start()
    return RunningServer(server, thread)

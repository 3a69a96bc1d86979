"""moto's server with HTTP/1.1 keep-alive.

werkzeug's development server answers every request with ``Connection: close`` (it cannot tell
where an unread request body ends, and after answering it drains the socket to be safe), so every
AWS call a function makes opens a TCP connection, the server starts a thread for it, and botocore
sets up a new urllib3 connection: with one conditional PutItem per ticket that is a connection per
ticket. Here a request whose body length is known (``Content-Length``, no ``Transfer-Encoding``;
``Expect: 100-continue`` answered first, as werkzeug does) is read whole before the application sees it, answered with a ``Content-Length``,
and the connection then waits for the client's next request, as AWS's endpoints do. Anything else
(chunked uploads, another ``Expect``) is served by werkzeug's own code and closed as before.
The application, hence every answer, is moto's unchanged.

Request headers: http.server hands them to the email package's feed parser, about a tenth of the
server's CPU per PutItem. Here an ordinary header block (``Name: value`` lines, CRLF or LF, no
folded continuation lines, no stray CR) is split directly into the same ``HTTPMessage``
(``set_raw``, as the parser stores them); anything else is parsed by the email package as before.
werkzeug's one log line per request is skipped when its logger would drop it (the daemon sets it to
WARNING) instead of being formatted first.
"""

from __future__ import annotations

import http.client
import io
import logging
import re
import threading
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

_NO_BODY = {204, 304}
# What the email feed parser takes for a header line (its headerRE), with a non-empty name.
_HEADER_LINE = re.compile(r"([\041-\071\073-\176]+):(.*)", re.DOTALL)


class KeepAliveHeaders(http.client.HTTPMessage):
    """The request headers' class; http.client.parse_headers splits a plain block of them directly."""


def split_headers(lines: list[bytes]) -> KeepAliveHeaders | None:
    """The headers the email parser would make of `lines` (as http.client reads them, the blank
    line last), or None when the block is anything but plain `Name: value` lines."""
    message = KeepAliveHeaders()
    for raw in lines[:-1]:
        if raw.endswith(b"\r\n"):
            line = raw[:-2]
        elif raw.endswith(b"\n"):
            line = raw[:-1]
        else:
            return None
        if b"\r" in line or b"\n" in line:
            return None  # the email parser splits lines at a lone CR too
        match = _HEADER_LINE.fullmatch(line.decode("iso-8859-1"))
        if match is None:
            return None  # folded continuation, "From " line, no colon: the email parser's business
        message.set_raw(match[1], match[2].lstrip(" \t"))
    if lines[-1] not in (b"\r\n", b"\n"):
        return None
    message.set_payload("")  # the email parser's empty body
    return message


_email_parse_headers = http.client.parse_headers


def _parse_headers(fp: Any, _class: type = http.client.HTTPMessage) -> Any:
    if _class is not KeepAliveHeaders:
        return _email_parse_headers(fp, _class)
    lines = http.client._read_headers(fp)  # the same line and header-count limits
    return split_headers(lines) or _email_parse_headers(io.BytesIO(b"".join(lines)), _class)


_parse_headers.__wrapped__ = _email_parse_headers  # type: ignore[attr-defined]
http.client.parse_headers = _parse_headers  # only requests to KeepAliveHandler take the other path
_werkzeug_log = logging.getLogger("werkzeug")


class KeepAliveHandler(MotoRequestHandler):
    # A reused connection with Nagle on waits for the client's delayed ACK (~40 ms) before the
    # body that follows the headers; the client (urllib3) sets TCP_NODELAY too.
    disable_nagle_algorithm = True
    MessageClass = KeepAliveHeaders

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # werkzeug sets an unset level to INFO on its first line; a level that drops INFO drops this one
        if _werkzeug_log.level == logging.NOTSET or _werkzeug_log.isEnabledFor(logging.INFO):
            super().log_request(code, size)

    def run_wsgi(self) -> None:
        length = self.headers.get("Content-Length", "0")
        expect = self.headers.get("Expect", "").lower().strip(" \t")
        if self.headers.get("Transfer-Encoding") or expect not in ("", "100-continue") or not length.isdigit():
            return super().run_wsgi()  # werkzeug's path, which closes the connection
        if expect:  # botocore asks before every S3 upload; werkzeug answers the same way
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = self.rfile.read(int(length))
        if len(body) < int(length):  # the client went away mid-body
            self.close_connection = True
            return
        self.environ = environ = self.make_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        status, headers, payload = self._call(environ)
        code_str, _, msg = status.partition(" ")
        code = int(code_str)
        self.send_response(code, msg)
        names = set()
        for key, value in headers:
            if key.lower() == "connection":
                continue
            self.send_header(key, value)
            names.add(key.lower())
        head = environ["REQUEST_METHOD"] == "HEAD"
        if "content-length" not in names and not head and not (100 <= code < 200 or code in _NO_BODY):
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and not head and code not in _NO_BODY:
            self.wfile.write(payload)
        self.wfile.flush()

    def _call(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer["status"], answer["headers"] = status, headers
            return lambda data: answer.setdefault("written", []).append(data)

        try:
            result = self.server.app(environ, start_response)
            try:
                payload = b"".join(answer.get("written", [])) + b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            return answer["status"], answer["headers"], payload
        except Exception as exc:  # what werkzeug does: a 500 to the client, the traceback to the log
            self.server.log("error", f"Error on request {environ.get('PATH_INFO')}: {exc!r}")
            self.close_connection = True
            text = b"Internal Server Error"
            return "500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain"), ("Content-Length", str(len(text)))], text


class KeepAliveMotoServer:
    """ThreadedMotoServer's interface (start, stop, get_host_and_port) with KeepAliveHandler."""

    def __init__(self, ip_address: str, port: int) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(ip_address, port, app, threaded=True, request_handler=KeepAliveHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), port

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

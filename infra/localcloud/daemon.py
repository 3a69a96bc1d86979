"""`supportlens local up` runs this in the background: the local cloud plus a control API.

Control API (loopback only): GET /status, POST /tick {"function": name|null},
POST /wait-idle {"timeout": s}, POST /shutdown.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .cloud import LocalCloud, free_port, write_state


def serve(cloud: LocalCloud, state_file: Path) -> None:
    stopping = threading.Event()

    class Control(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, code: int, body: Any) -> None:
            data = json.dumps(body, default=str).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}")

        def do_GET(self) -> None:
            if self.path == "/status":
                self._reply(200, cloud.status())
            else:
                self._reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            try:
                body = self._body()
                if self.path == "/tick":
                    self._reply(200, {"results": cloud.tick(body.get("function"))})
                elif self.path == "/invoke":  # one function, one event (what `aws lambda invoke` does)
                    result = cloud.invoke(body["function"], body.get("event") or {})
                    self._reply(200, {"ok": result.error is None, "error": result.error, "result": result.payload,
                                      "duration_ms": round(result.duration_ms)})
                elif self.path == "/wait-idle":
                    self._reply(200, {"idle": cloud.wait_idle(float(body.get("timeout", 300)))})
                elif self.path == "/shutdown":
                    self._reply(200, {"stopping": True})
                    stopping.set()
                else:
                    self._reply(404, {"error": "not found"})
            except KeyError as exc:
                self._reply(404, {"error": str(exc).strip("'\"")})
            except Exception as exc:  # report, keep serving
                self._reply(500, {"error": repr(exc)})

    control = ThreadingHTTPServer(("127.0.0.1", free_port()), Control)
    threading.Thread(target=control.serve_forever, daemon=True).start()
    write_state(state_file, cloud, control.server_address[1])
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    try:
        stopping.wait()
    finally:
        control.shutdown()
        cloud.stop()
        state_file.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m localcloud.daemon")
    parser.add_argument("--template", type=Path, required=True)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--log-dir", type=Path, default=None)
    parser.add_argument("--param", action="append", default=[])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per emulator request is noise
    params = dict(p.split("=", 1) for p in args.param)
    cloud = LocalCloud(args.template, port=args.port, parameters=params, log_dir=args.log_dir)
    try:
        cloud.start()
    except Exception:
        logging.exception("local cloud failed to start")
        cloud.stop()
        raise SystemExit(1)
    serve(cloud, args.state)


if __name__ == "__main__":
    main()

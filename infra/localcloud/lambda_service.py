"""Local AWS Lambda service: runs function handlers in worker processes.

Each function gets one execution environment at a time: a subprocess running
AWS's runtime interface client (``python -m awslambdaric <handler>``) that talks
to a small Lambda Runtime API shim served on 127.0.0.1 by this process. The
shim is recreated with every execution environment, like a real sandbox's
Runtime API endpoint, so a killed worker's half-open requests can never steal
an event meant for its successor.

Only the standard library is used here; awslambdaric is needed in the worker's
interpreter only.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import secrets
import signal
import socketserver
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

from . import request_log

logger = logging.getLogger(__name__)

__all__ = ["FunctionConfig", "InvokeResult", "LambdaService"]

_API_PREFIX = "/2018-06-01/runtime"
_NEXT_RE = re.compile(rf"^{_API_PREFIX}/invocation/next$")
_RESULT_RE = re.compile(rf"^{_API_PREFIX}/invocation/(?P<id>[^/]+)/(?P<kind>response|error)$")
_INIT_ERROR_RE = re.compile(rf"^{_API_PREFIX}/init/error$")

# Real Lambda gives init 10 s on its own before it counts against the invoke.
_INIT_GRACE_S = 10.0
# How often a waiting invoke re-checks the worker process (crash detection latency).
_POLL_S = 0.05
# stop(): how long workers get to exit after SIGTERM before SIGKILL.
_TERM_GRACE_S = 3.0
_DEFAULT_REGION = "us-east-1"
_DEFAULT_ACCOUNT = "123456789012"
# Variables the real runtime reads that must not leak in from the parent's
# environment (e.g. a multi-concurrency switch would change awslambdaric's mode).
_INHERITED_BLOCKLIST = (
    "AWS_LAMBDA_MAX_CONCURRENCY",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "_LAMBDA_TELEMETRY_LOG_FD",
    "_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET",
)


@dataclass
class FunctionConfig:
    name: str  # logical id, e.g. "IngestFunction"
    function_name: str  # physical name, e.g. "supportlens-dev-ingest"
    code_dir: Path  # directory holding the handler module (the function's CodeUri)
    handler: str  # e.g. "app.handler"
    layer_dirs: list[Path]  # directories to put on PYTHONPATH after code_dir (like /opt/python)
    environment: dict[str, str]  # the function's environment variables from the template
    timeout_s: int = 60
    memory_mb: int = 1024
    arn: str = ""  # arn:aws:lambda:<region>:<account>:function:<function_name>
    dead_letter_arn: str = ""  # DeadLetterConfig: where failed asynchronous invocations (schedules) go


@dataclass
class InvokeResult:
    request_id: str
    payload: Any  # decoded JSON response (None on error)
    error: dict | None  # {"errorMessage","errorType","stackTrace"} or None
    duration_ms: float  # handler run time, from hand-off to the runtime until its answer
    cold_start: bool


@dataclass
class _Invocation:
    request_id: str
    body: bytes
    trace_id: str
    dispatched: bool = False
    dispatched_at: float = 0.0  # monotonic
    deadline: float = 0.0  # monotonic, valid once dispatched
    done: bool = False
    response: bytes | None = None
    error: dict | None = None
    finished_at: float = 0.0  # monotonic


def _trace_id() -> str:
    # X-Ray format; Sampled=0 so an X-Ray SDK in the handler never tries to emit segments.
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


def _exit_description(returncode: int) -> str:
    # Mirrors Lambda's Runtime.ExitError wording ("exit status 3", "signal: killed").
    if returncode < 0:
        name = signal.strsignal(-returncode) or f"signal {-returncode}"
        return f"signal: {name.lower()}"
    return f"exit status {returncode}"


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    # The worker leads its own process group, so this also reaches anything it forked.
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class _ShimServer(ThreadingHTTPServer):
    daemon_threads = True  # blocked long-polls must never hold up shutdown
    sandbox: "_Sandbox"

    def server_bind(self) -> None:
        # Skip HTTPServer's socket.getfqdn(), a reverse DNS lookup that can stall for seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A killed worker drops its connections mid-request; that is routine, not worth a traceback.
        logger.debug("runtime API request from %s failed", client_address, exc_info=True)


class _ShimHandler(BaseHTTPRequestHandler):
    """Lambda Runtime API endpoints used by awslambdaric."""

    # HTTP/1.1 so curl's "Expect: 100-continue" is answered instead of stalling 1 s.
    protocol_version = "HTTP/1.1"
    server: _ShimServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # silence per-request logging

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, TimeoutError):
            # The worker went away (killed on timeout/stop); nothing left to answer.
            self.close_connection = True

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if "Content-Type" not in (headers or {}):
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _send_json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode())

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # Drain optional trailers up to the blank line.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if not _NEXT_RE.match(self.path):
            self._send_json(404, {"errorMessage": "Not found", "errorType": "NotFound"})
            return
        inv = self.server.sandbox.next_invocation()
        if inv is None:
            # Sandbox is being torn down; the worker is about to be killed anyway.
            self.close_connection = True
            self._send_json(410, {"errorMessage": "Execution environment shut down", "errorType": "Gone"})
            return
        sb = self.server.sandbox
        deadline_ms = int(time.time() * 1000) + sb.config.timeout_s * 1000
        self._send(
            200,
            inv.body,
            {
                "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": sb.arn,
                "Lambda-Runtime-Trace-Id": inv.trace_id,
                # Exactly this value: awslambdaric passes the raw body through for any other type.
                "Content-Type": "application/json",
            },
        )

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = self._read_body()
        sb = self.server.sandbox
        if m := _RESULT_RE.match(self.path):
            if m["kind"] == "response":
                accepted = sb.complete(m["id"], response=body)
            else:
                accepted = sb.complete(m["id"], error=_parse_error(body, self.headers))
            if accepted:
                self._send_json(202, {"status": "OK"})
            else:
                self._send_json(400, {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"})
        elif _INIT_ERROR_RE.match(self.path):
            sb.set_init_error(_parse_error(body, self.headers))
            self._send_json(202, {"status": "OK"})
        else:
            self._send_json(404, {"errorMessage": "Not found", "errorType": "NotFound"})


def _parse_error(body: bytes, headers: Any) -> dict:
    try:
        err = json.loads(body) if body else {}
    except ValueError:
        err = {"errorMessage": body.decode("utf-8", "replace")}
    if not isinstance(err, dict):
        err = {"errorMessage": str(err)}
    err.setdefault("errorType", headers.get("Lambda-Runtime-Function-Error-Type") or "Runtime.Unknown")
    err.setdefault("errorMessage", "")
    return err


class _Sandbox:
    """One execution environment: a worker process plus its Runtime API shim."""

    def __init__(self, config: FunctionConfig, env: dict[str, str], python: str, arn: str,
                 log_file: IO[bytes] | None, command: list[str] | None = None) -> None:
        self.config = config
        self.started_at = time.monotonic()  # the INIT phase runs from here to the first /next
        self.arn = arn
        self.cond = threading.Condition()
        self.pending: deque[_Invocation] = deque()
        self.current: _Invocation | None = None
        self.init_error: dict | None = None
        self.closed = False
        self._close_lock = threading.Lock()

        self.server = _ShimServer(("127.0.0.1", 0), _ShimHandler)
        self.server.sandbox = self
        port = self.server.server_address[1]
        self._server_thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
            name=f"lambda-shim-{config.function_name}", daemon=True,
        )
        self._server_thread.start()

        env = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}")
        try:
            self.proc = subprocess.Popen(
                command or [python, "-m", "awslambdaric", config.handler],
                cwd=str(config.code_dir),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file if log_file is not None else subprocess.DEVNULL,
                stderr=subprocess.STDOUT if log_file is not None else subprocess.DEVNULL,
                start_new_session=True,
            )
        except BaseException:
            self._shutdown_server()
            raise
        logger.debug("started worker pid=%s for %s on port %s", self.proc.pid, config.function_name, port)

    # --- called from shim threads -------------------------------------------------
    def next_invocation(self) -> _Invocation | None:
        with self.cond:
            while not self.pending:
                if self.closed:
                    return None
                self.cond.wait(0.5)
            if self.closed:
                return None
            inv = self.pending.popleft()
            inv.dispatched = True
            inv.dispatched_at = time.monotonic()
            inv.deadline = inv.dispatched_at + self.config.timeout_s
            self.current = inv
            self.cond.notify_all()
            return inv

    def complete(self, request_id: str, *, response: bytes | None = None, error: dict | None = None) -> bool:
        with self.cond:
            inv = self.current
            if inv is None or inv.request_id != request_id or inv.done:
                return False
            inv.response, inv.error, inv.done = response, error, True
            inv.finished_at = time.monotonic()
            self.current = None
            self.cond.notify_all()
            return True

    def set_init_error(self, error: dict) -> None:
        with self.cond:
            self.init_error = error
            self.cond.notify_all()

    # --- called from invoke() -----------------------------------------------------
    def submit(self, inv: _Invocation) -> None:
        with self.cond:
            self.pending.append(inv)
            self.cond.notify_all()

    def wait(self, inv: _Invocation) -> str:
        """Block until the invocation ends; returns "done", "timeout", "init_error" or "exited"."""
        init_limit = time.monotonic() + _INIT_GRACE_S + self.config.timeout_s
        with self.cond:
            while True:
                if inv.done:
                    return "done"
                if self.init_error is not None and not inv.dispatched:
                    return "init_error"
                if self.proc.poll() is not None:
                    # The answer may have landed just before the exit; prefer it.
                    return "done" if inv.done else ("init_error" if self.init_error else "exited")
                now = time.monotonic()
                if now >= (inv.deadline if inv.dispatched else init_limit):
                    return "timeout"
                self.cond.wait(_POLL_S)

    # --- teardown -------------------------------------------------------------------
    def _mark_closed(self) -> bool:
        with self._close_lock:
            if self.closed:
                return False
            with self.cond:
                self.closed = True
                self.pending.clear()
                self.cond.notify_all()
            return True

    def _shutdown_server(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def kill(self) -> None:
        """Tear down immediately (timeout, crash): SIGKILL, as Lambda does."""
        if not self._mark_closed():
            return
        _kill_group(self.proc, signal.SIGKILL)
        self.proc.wait()
        self._shutdown_server()

    def begin_terminate(self) -> bool:
        if not self._mark_closed():
            return False
        if self.proc.poll() is None:
            _kill_group(self.proc, signal.SIGTERM)
        else:
            _kill_group(self.proc, signal.SIGKILL)  # reap stragglers the worker may have forked
        return True

    def finish_terminate(self, deadline: float) -> None:
        try:
            self.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("worker pid=%s of %s ignored SIGTERM; killing", self.proc.pid,
                           self.config.function_name)
        _kill_group(self.proc, signal.SIGKILL)
        self.proc.wait()
        self._shutdown_server()


@dataclass
class _Function:
    config: FunctionConfig
    # Each environment runs one invocation at a time; invocations that arrive together get an
    # environment each (warm ones first), as Lambda scales a function out.
    idle: list[_Sandbox] = field(default_factory=list)
    live: set[_Sandbox] = field(default_factory=set)
    log_file: IO[bytes] | None = None


class LambdaService:
    """Invokes functions in per-function execution environments driven by awslambdaric."""

    def __init__(self, functions: list[FunctionConfig], *, base_env: dict[str, str] | None = None,
                 python: str = sys.executable, log_dir: Path | None = None,
                 request_log_dir: Path | None = None) -> None:
        self._base_env = dict(base_env or {})
        # Off by default: with a directory, workers log every AWS call they make (request_log.py).
        self._request_log_dir = Path(request_log_dir).resolve() if request_log_dir is not None else None
        self._invocations_lock = threading.Lock()
        self._python = python
        self._log_dir = Path(log_dir) if log_dir is not None else None
        self._functions: dict[str, _Function] = {}
        self._by_name: dict[str, _Function] = {}
        for cfg in functions:
            fn = _Function(config=cfg)
            self._functions[cfg.name] = fn
            self._by_name[cfg.name] = fn
            self._by_name[cfg.function_name] = fn
        self._state_lock = threading.Lock()  # guards sandbox swaps and _stopped
        self._stopped = False
        if self._log_dir is not None:
            self._log_dir.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop)

    # --- public API -------------------------------------------------------------------
    def function_names(self) -> list[str]:
        return [fn.config.function_name for fn in self._functions.values()]

    def invoke(self, name: str, event: Any) -> InvokeResult:
        fn = self._by_name.get(name)
        if fn is None:
            raise KeyError(name)
        body = json.dumps(event).encode()
        sandbox, cold = self._acquire_sandbox(fn)
        try:
            inv = _Invocation(request_id=str(uuid.uuid4()), body=body, trace_id=_trace_id())
            started = time.monotonic()
            self._platform_log(fn, f"START RequestId: {inv.request_id} Version: $LATEST")
            sandbox.submit(inv)
            outcome = sandbox.wait(inv)
        except BaseException:
            self._discard(fn, sandbox)
            raise
        if outcome != "done":
            # Lambda discards the environment after a timeout, init failure or crash.
            self._discard(fn, sandbox)
        result = self._result(fn, sandbox, inv, outcome, started, cold)
        self._platform_log(fn, f"END RequestId: {inv.request_id}")
        report = (f"REPORT RequestId: {inv.request_id}\tDuration: {result.duration_ms:.2f} ms\t"
                  f"Memory Size: {fn.config.memory_mb} MB")
        if cold:
            report += "\tCold start"
        if outcome != "done":
            report += f"\tStatus: {outcome}"
        self._platform_log(fn, report)
        self._log_invocation(fn, sandbox, inv, result, outcome)
        if outcome == "done":
            self._release(fn, sandbox)  # warm, for the next invocation
        return result

    def stop(self) -> None:
        with self._state_lock:
            self._stopped = True
            sandboxes = [sb for fn in self._functions.values() for sb in fn.live]
            for fn in self._functions.values():
                fn.live.clear()
                fn.idle.clear()
        # Signal everyone first so the 3 s grace runs concurrently, not per worker.
        started = [sb for sb in sandboxes if sb.begin_terminate()]
        deadline = time.monotonic() + _TERM_GRACE_S
        for sb in started:
            sb.finish_terminate(deadline)
        with self._state_lock:
            for fn in self._functions.values():
                if fn.log_file is not None:
                    fn.log_file.close()
                    fn.log_file = None
        atexit.unregister(self.stop)

    # --- internals ----------------------------------------------------------------------
    def _acquire_sandbox(self, fn: _Function) -> tuple[_Sandbox, bool]:
        dead = []
        with self._state_lock:
            if self._stopped:
                raise RuntimeError("LambdaService has been stopped")
            while fn.idle:
                sb = fn.idle.pop()  # the most recently used: warm reuse, as on Lambda
                if not sb.closed and sb.proc.poll() is None:
                    return sb, False
                dead.append(sb)  # worker died between invocations (e.g. a background thread crashed it)
        for sb in dead:
            self._discard(fn, sb)
        with self._state_lock:
            if self._stopped:
                raise RuntimeError("LambdaService has been stopped")
            cfg = fn.config
            logger.info("cold start of %s (%s)", cfg.name, cfg.function_name)
            command = (request_log.bootstrap_command(self._python, cfg.handler)
                       if self._request_log_dir is not None else None)
            sb = _Sandbox(cfg, self._worker_env(cfg), self._python, self._arn(cfg), self._log_file(fn), command)
            fn.live.add(sb)
            return sb, True

    def _release(self, fn: _Function, sandbox: _Sandbox) -> None:
        with self._state_lock:
            if sandbox in fn.live and not self._stopped:
                fn.idle.append(sandbox)
                return
        sandbox.kill()  # stop() ran meanwhile (it has already signalled it; kill is a no-op then)

    def _discard(self, fn: _Function, sandbox: _Sandbox) -> None:
        with self._state_lock:
            fn.live.discard(sandbox)
            if sandbox in fn.idle:
                fn.idle.remove(sandbox)
        sandbox.kill()

    def _result(self, fn: _Function, sandbox: _Sandbox, inv: _Invocation, outcome: str,
                started: float, cold: bool) -> InvokeResult:
        if inv.dispatched:
            end = inv.finished_at if inv.done else time.monotonic()
            duration_ms = (end - inv.dispatched_at) * 1000
        else:
            duration_ms = (time.monotonic() - started) * 1000
        payload: Any = None
        error: dict | None = None
        if outcome == "done":
            if inv.error is not None:
                error = inv.error
            else:
                payload = _decode_payload(inv.response or b"")
        elif outcome == "init_error":
            error = sandbox.init_error
        elif outcome == "timeout":
            error = {"errorType": "Sandbox.Timedout",
                     "errorMessage": f"Task timed out after {fn.config.timeout_s:.2f} seconds"}
        else:
            rc = sandbox.proc.returncode if sandbox.proc.returncode is not None else -signal.SIGKILL
            error = {"errorType": "Runtime.ExitError",
                     "errorMessage": f"RequestId: {inv.request_id} Error: Runtime exited with error: "
                                     f"{_exit_description(rc)}"}
        if error is not None:
            logger.debug("%s invocation %s failed: %s", fn.config.name, inv.request_id, error.get("errorType"))
        return InvokeResult(request_id=inv.request_id, payload=payload, error=error,
                            duration_ms=duration_ms, cold_start=cold)

    def _region(self) -> str:
        for source in (self._base_env, os.environ):
            region = source.get("AWS_REGION") or source.get("AWS_DEFAULT_REGION")
            if region:
                return region
        return _DEFAULT_REGION

    def _arn(self, cfg: FunctionConfig) -> str:
        if cfg.arn:
            return cfg.arn
        account = self._base_env.get("AWS_ACCOUNT_ID") or os.environ.get("AWS_ACCOUNT_ID") or _DEFAULT_ACCOUNT
        return f"arn:aws:lambda:{self._region()}:{account}:function:{cfg.function_name}"

    def _worker_env(self, cfg: FunctionConfig) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _INHERITED_BLOCKLIST}
        existing_pythonpath = self._base_env.get("PYTHONPATH", env.get("PYTHONPATH", ""))
        env.update(self._base_env)
        env.update({k: str(v) for k, v in cfg.environment.items()})
        region = self._region()
        code_dir = str(Path(cfg.code_dir).resolve())
        paths = [code_dir, *(str(Path(p).resolve()) for p in cfg.layer_dirs)]
        if existing_pythonpath:
            paths.append(existing_pythonpath)
        stream = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[$LATEST]{uuid.uuid4().hex}"
        # Variables Lambda itself sets; they win over anything from the template.
        env.update({
            "_HANDLER": cfg.handler,
            "LAMBDA_TASK_ROOT": code_dir,
            "AWS_LAMBDA_FUNCTION_NAME": cfg.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(cfg.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{cfg.function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "PYTHONPATH": os.pathsep.join(paths),
        })
        env.pop(request_log.ENV, None)
        if self._request_log_dir is not None:
            env[request_log.ENV] = str(self._request_log_dir)
        return env

    def _log_invocation(self, fn: _Function, sandbox: _Sandbox, inv: _Invocation, result: InvokeResult,
                        outcome: str) -> None:
        """One line per invocation for the bill: duration, INIT time of a cold start, memory size."""
        if self._request_log_dir is None:
            return
        init_ms = (inv.dispatched_at - sandbox.started_at) * 1000 if result.cold_start and inv.dispatched else 0.0
        line = json.dumps({
            "t": round(time.time(), 3), "function": fn.config.name, "function_name": fn.config.function_name,
            "memory_mb": fn.config.memory_mb, "request_id": inv.request_id,
            "trace": inv.trace_id.split(";")[0].removeprefix("Root="), "duration_ms": round(result.duration_ms, 3),
            "init_ms": round(init_ms, 3), "cold": result.cold_start, "outcome": outcome,
            "error": (result.error or {}).get("errorType")})
        with self._invocations_lock:
            self._request_log_dir.mkdir(parents=True, exist_ok=True)
            with open(self._request_log_dir / request_log.INVOCATIONS, "a", encoding="utf-8") as f:
                f.write(line + "\n")

    def _log_file(self, fn: _Function) -> IO[bytes] | None:
        if self._log_dir is None:
            return None
        if fn.log_file is None or fn.log_file.closed:
            fn.log_file = open(self._log_dir / f"{fn.config.function_name}.log", "ab", buffering=0)
        return fn.log_file

    def _platform_log(self, fn: _Function, line: str) -> None:
        # Same file the worker writes to (both O_APPEND), like Lambda's platform lines in CloudWatch.
        f = fn.log_file
        if f is not None and not f.closed:
            try:
                f.write((line + "\n").encode())
            except (OSError, ValueError):
                pass


def _decode_payload(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        # Handlers returning bytes are sent as application/unknown; hand them back as text.
        return body.decode("utf-8", "replace")

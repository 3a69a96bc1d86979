"""Tests for the local Lambda service (workers run the real awslambdaric)."""

from __future__ import annotations

import os
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from localcloud.lambda_service import FunctionConfig, LambdaService

pytest.importorskip("awslambdaric")

APP = '''
import os
import subprocess
import sys
import time

INVOCATIONS = 0  # module-level state must survive warm invokes


def handler(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    action = event.get("action", "echo")
    if action == "raise":
        raise ValueError("bad input: " + str(event.get("why")))
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "exit":
        os._exit(3)
    if action == "layer":
        import shared_helper
        return {"from_layer": shared_helper.greet("lambda")}
    if action == "spawn":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        return {"pid": os.getpid(), "child_pid": child.pid}
    print("handled", context.aws_request_id)
    return {
        "event": event,
        "function_name": context.function_name,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "arn": context.invoked_function_arn,
        "memory": context.memory_limit_in_mb,
        "greeting": os.environ.get("GREETING"),
        "base": os.environ.get("BASE_VAR"),
        "region": os.environ.get("AWS_REGION"),
        "runtime_api": os.environ.get("AWS_LAMBDA_RUNTIME_API"),
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "invocations": INVOCATIONS,
        "pid": os.getpid(),
    }
'''

BROKEN = '''
import module_that_does_not_exist  # noqa: F401


def handler(event, context):
    return "unreachable"
'''

LAYER = '''
def greet(name):
    return "hello " + name
'''


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed grandchild may linger as a zombie until init reaps it; that counts as dead.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.fixture()
def project(tmp_path: Path) -> dict[str, Path]:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(textwrap.dedent(APP))
    (code / "broken.py").write_text(textwrap.dedent(BROKEN))
    layer = tmp_path / "layer" / "python"
    layer.mkdir(parents=True)
    (layer / "shared_helper.py").write_text(textwrap.dedent(LAYER))
    return {"code": code, "layer": layer, "logs": tmp_path / "logs"}


@pytest.fixture()
def service(project: dict[str, Path]):
    def cfg(name: str, fname: str, handler: str = "app.handler", timeout_s: int = 10) -> FunctionConfig:
        return FunctionConfig(
            name=name,
            function_name=fname,
            code_dir=project["code"],
            handler=handler,
            layer_dirs=[project["layer"]],
            environment={"GREETING": "hi from template", "AWS_REGION": "ignored-by-lambda"},
            timeout_s=timeout_s,
            memory_mb=512,
        )

    svc = LambdaService(
        [
            cfg("EchoFunction", "test-echo"),
            cfg("OtherFunction", "test-other"),
            cfg("SlowFunction", "test-slow", timeout_s=1),
            cfg("BrokenFunction", "test-broken", handler="broken.handler"),
        ],
        base_env={"BASE_VAR": "base", "AWS_REGION": "eu-west-1"},
        log_dir=project["logs"],
    )
    yield svc
    svc.stop()


def test_round_trip_with_real_context(service: LambdaService, project: dict[str, Path]) -> None:
    result = service.invoke("EchoFunction", {"hello": "world", "n": [1, 2.5, None]})
    assert result.error is None, result.error
    assert result.cold_start is True
    assert result.duration_ms >= 0
    body = result.payload
    assert body["event"] == {"hello": "world", "n": [1, 2.5, None]}
    assert body["function_name"] == "test-echo"
    assert body["request_id"] == result.request_id
    assert body["remaining_ms"] > 0
    assert body["arn"] == "arn:aws:lambda:eu-west-1:123456789012:function:test-echo"
    assert body["memory"] == "512"
    assert body["greeting"] == "hi from template"
    assert body["base"] == "base"
    assert body["region"] == "eu-west-1"  # Lambda-set variables win over the template's
    assert body["trace"].startswith("Root=1-")
    log = (project["logs"] / "test-echo.log").read_text()
    assert f"handled {result.request_id}" in log
    assert f"REPORT RequestId: {result.request_id}" in log


def test_warm_invoke_keeps_module_state(service: LambdaService) -> None:
    first = service.invoke("EchoFunction", {})
    second = service.invoke("test-echo", {})  # physical name works too
    assert (first.cold_start, second.cold_start) == (True, False)
    assert second.payload["invocations"] == first.payload["invocations"] + 1 == 2
    assert second.payload["pid"] == first.payload["pid"]
    assert first.request_id != second.request_id


def test_handler_exception_returns_lambda_error_shape(service: LambdaService) -> None:
    result = service.invoke("EchoFunction", {"action": "raise", "why": "nope"})
    assert result.payload is None
    assert result.error["errorType"] == "ValueError"
    assert result.error["errorMessage"] == "bad input: nope"
    assert isinstance(result.error["stackTrace"], list) and result.error["stackTrace"]
    after = service.invoke("EchoFunction", {"ok": True})
    assert after.error is None
    assert after.cold_start is False  # an exception does not cost the environment
    assert after.payload["event"] == {"ok": True}


def test_timeout_kills_worker_and_next_invoke_is_cold(service: LambdaService) -> None:
    warm = service.invoke("SlowFunction", {})
    started = time.monotonic()
    result = service.invoke("SlowFunction", {"action": "sleep", "seconds": 10})
    elapsed = time.monotonic() - started
    assert result.error == {"errorType": "Sandbox.Timedout",
                            "errorMessage": "Task timed out after 1.00 seconds"}
    assert result.payload is None
    assert elapsed < 3
    assert not _alive(warm.payload["pid"])
    after = service.invoke("SlowFunction", {})
    assert after.error is None
    assert after.cold_start is True
    assert after.payload["invocations"] == 1


def test_worker_exit_returns_exit_error(service: LambdaService) -> None:
    result = service.invoke("EchoFunction", {"action": "exit"})
    assert result.error["errorType"] == "Runtime.ExitError"
    assert result.error["errorMessage"] == (
        f"RequestId: {result.request_id} Error: Runtime exited with error: exit status 3")
    after = service.invoke("EchoFunction", {})
    assert after.error is None and after.cold_start is True


def test_import_error_is_reported_as_init_error(service: LambdaService) -> None:
    result = service.invoke("BrokenFunction", {})
    assert result.payload is None
    assert result.error["errorType"] == "Runtime.ImportModuleError"
    assert "module_that_does_not_exist" in result.error["errorMessage"]
    again = service.invoke("BrokenFunction", {})
    assert again.cold_start is True
    assert again.error["errorType"] == "Runtime.ImportModuleError"


def test_layer_module_is_importable(service: LambdaService) -> None:
    result = service.invoke("EchoFunction", {"action": "layer"})
    assert result.error is None, result.error
    assert result.payload == {"from_layer": "hello lambda"}


def test_unknown_function_raises_key_error(service: LambdaService) -> None:
    assert set(service.function_names()) == {"test-echo", "test-other", "test-slow", "test-broken"}
    with pytest.raises(KeyError):
        service.invoke("NoSuchFunction", {})


def test_runtime_api_shim_rejects_unknown_routes(service: LambdaService) -> None:
    api = service.invoke("EchoFunction", {}).payload["runtime_api"]
    assert api.startswith("127.0.0.1:")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"http://{api}/2018-06-01/nothing-here", timeout=5)
    exc.value.close()  # HTTPError keeps the connection open
    assert exc.value.code == 404


def test_different_functions_run_in_parallel(service: LambdaService) -> None:
    for name in ("EchoFunction", "OtherFunction"):
        assert service.invoke(name, {}).error is None  # warm both up first
    results: dict[str, object] = {}

    def run(name: str) -> None:
        results[name] = service.invoke(name, {"action": "sleep", "seconds": 1})

    threads = [threading.Thread(target=run, args=(n,)) for n in ("EchoFunction", "OtherFunction")]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started < 1.8
    assert all(r.error is None for r in results.values())


def test_one_function_invoked_at_once_runs_in_two_environments(service: LambdaService) -> None:
    """As Lambda scales out: concurrent invokes of one function each get an environment; both stay warm."""
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(service.invoke("EchoFunction", {"action": "sleep", "seconds": 1})))
               for _ in range(2)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started < 1.8 + 2 * 1.5  # two cold starts, one second of work at the same time
    assert all(r.error is None and r.cold_start for r in results)
    pids = {service.invoke("EchoFunction", {}).payload["pid"] for _ in range(2)}
    assert len(pids) == 1  # one invoke at a time reuses the warm environment
    service.stop()
    assert not any(_alive(pid) for pid in pids)


def test_stop_leaves_no_worker_alive(service: LambdaService) -> None:
    spawned = service.invoke("EchoFunction", {"action": "spawn"}).payload
    other = service.invoke("OtherFunction", {}).payload
    pids = [spawned["pid"], spawned["child_pid"], other["pid"]]
    assert all(_alive(p) for p in pids)
    service.stop()
    assert not any(_alive(p) for p in pids)
    service.stop()  # idempotent
    with pytest.raises(RuntimeError):
        service.invoke("EchoFunction", {})

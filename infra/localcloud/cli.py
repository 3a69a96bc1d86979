"""`supportlens local ...`: start, drive and stop the local cloud."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from supportlens_cli.client import STATE_DIR, STATE_FILE, CliError, local_state


def control(path: str, body: dict[str, Any] | None = None, timeout: float = 900) -> dict[str, Any]:
    state = local_state()
    if state is None:
        raise CliError("no local cloud is running here (start one with `supportlens local up`)")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(state["control"] + path, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise CliError(json.loads(exc.read()).get("error", str(exc))) from None
    except OSError as exc:
        raise CliError(f"the local cloud does not answer ({exc}); remove {STATE_FILE} if it is stale") from None


def _alive(pid: int) -> bool:
    try:  # started by this process (`make demo`): an exited child stays a zombie, which kill(0) still finds
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:  # not our child: started by another `supportlens local up`
        pass
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def up(template: Path, port: int | None, params: list[str], timeout: float = 120) -> dict[str, Any]:
    state = local_state()
    if state and _alive(state["pid"]):
        return state
    STATE_FILE.unlink(missing_ok=True)
    log_dir = STATE_DIR / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "localcloud.daemon", "--template", str(template), "--state", str(STATE_FILE),
               "--log-dir", str(log_dir)]
    if port:
        command += ["--port", str(port)]
    for param in params:
        command += ["--param", param]
    with (log_dir / "cloud.log").open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if STATE_FILE.exists():
            return json.loads(STATE_FILE.read_text())
        if process.poll() is not None:
            tail = (log_dir / "cloud.log").read_text(errors="replace").splitlines()[-15:]
            raise CliError("the local cloud failed to start:\n  " + "\n  ".join(tail))
        time.sleep(0.2)
    process.terminate()
    raise CliError(f"the local cloud did not start within {timeout:.0f}s (see {log_dir / 'cloud.log'})")


def down(timeout: float = 30) -> str | None:
    """Stop the local cloud: ask it (it stops pollers, functions and moto), then SIGTERM, and SIGKILL
    only as the last resort. Returns how it stopped, or None when none was running."""
    state = local_state()
    if state is None:
        return None
    started = time.monotonic()
    try:
        control("/shutdown", {}, timeout=10)
    except CliError:
        pass
    how = "stopped"
    if not _wait_gone(state["pid"], timeout):
        os.killpg(state["pid"], signal.SIGTERM)
        how = f"did not stop within {timeout:.0f}s; sent SIGTERM"
        if not _wait_gone(state["pid"], 10):
            os.killpg(state["pid"], signal.SIGKILL)
            how += ", then SIGKILL"
    STATE_FILE.unlink(missing_ok=True)
    return f"{how} ({time.monotonic() - started:.1f}s)"


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not _alive(pid)


def cmd_up(args: argparse.Namespace) -> int:
    state = up(args.template.resolve(), args.port, args.param)
    print(f"local cloud up at {state['endpoint']} (pid {state['pid']})")
    for key, value in state["outputs"].items():
        print(f"  {key}: {value}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    how = down()
    print(f"local cloud {how}" if how else "no local cloud was running")
    return 0


def cmd_tick(args: argparse.Namespace) -> int:
    results = control("/tick", {"function": args.function})["results"]
    for r in results:
        if args.json:
            print(json.dumps(r, default=str))
        else:
            outcome = "ok" if r["ok"] else f"FAILED {r['error'].get('errorType')}: {r['error'].get('errorMessage')}"
            print(f"{r['schedule']} -> {r['function']} ({r['expression']}): {outcome} in {r['duration_ms']} ms")
    return 0 if all(r["ok"] for r in results) else 1


def cmd_status(args: argparse.Namespace) -> int:
    print(json.dumps(control("/status"), indent=2, default=str))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args)


def add_local_commands(sub: Any) -> None:
    local = sub.add_parser("local", help="the local emulated cloud (moto + template.yaml + local Lambda)")
    lsub = local.add_subparsers(dest="local_command", required=True)
    p = lsub.add_parser("up", help="start the emulator and deploy template.yaml onto it")
    p.add_argument("--template", type=Path, default=Path("template.yaml"))
    p.add_argument("--port", type=int, default=int(os.environ.get("SUPPORTLENS_LOCAL_PORT", "0")) or None)
    p.add_argument("--param", action="append", default=[], help="template parameter NAME=VALUE")
    p.set_defaults(func=cmd_up)
    p = lsub.add_parser("down", help="stop everything `local up` started")
    p.set_defaults(func=cmd_down)
    p = lsub.add_parser("tick", help="fire schedules now (all, or one function's)")
    p.add_argument("--function", help="e.g. Cluster or ReportFunction")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tick)
    p = lsub.add_parser("status", help="queues, pollers and outputs of the running local cloud")
    p.set_defaults(func=cmd_status)
    p = lsub.add_parser("demo", help="the whole flow on the bundled sample, then shut down")
    p.add_argument("--template", type=Path, default=Path("template.yaml"))
    p.add_argument("--out", type=Path, default=Path("out"))
    p.add_argument("--sample", type=Path, default=Path("events/samples/twcs_sample.csv"))
    p.set_defaults(func=cmd_demo)

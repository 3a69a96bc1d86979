"""Every dependency layer installs on the real Lambda runtime, with the versions the suite tests.

The python3.11 Lambda runtime runs on Amazon Linux 2 (glibc 2.26), and `sam build` fetches
manylinux2014 wheels for it. A pin that only ships manylinux_2_28 wheels (numpy >= 2.3, for one)
resolves fine on this machine and breaks only at deploy time, so this resolves each layer's
requirements for that platform through pip, against the package index, without installing.
It also keeps layers honest about transitive versions: anything a layer resolves that
requirements.lock pins must match the lock, or Lambda would run code the tests never did.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LAMBDA_PLATFORM = ["--platform", "manylinux2014_x86_64", "--implementation", "cp", "--python-version", "3.11",
                   "--only-binary=:all:"]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[_canonical(name)] = version.strip()
    return pins


def dependency_layers() -> list[tuple[str, Path]]:
    """(logical id, folder) of every template layer built from a requirements.txt."""
    class Loader(yaml.SafeLoader):
        pass
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # CloudFormation tags: not needed here
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)
    layers = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            folder = ROOT / resource["Properties"]["ContentUri"]
            if (folder / "requirements.txt").exists():
                layers.append((logical_id, folder))
    return layers


def resolve_for_lambda(requirements: Path, workdir: Path) -> dict[str, str]:
    report = workdir / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed", "--disable-pip-version-check",
         "--target", str(workdir / "target"), *LAMBDA_PLATFORM, "-r", str(requirements), "--report", str(report)],
        capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if not line.startswith("WARNING: Location")]
        pytest.fail(f"{requirements.relative_to(ROOT)} does not resolve for the python3.11 Lambda runtime "
                    f"(manylinux2014 wheels only):\n" + "\n".join(errors[-8:]))
    return {_canonical(item["metadata"]["name"]): item["metadata"]["version"]
            for item in json.loads(report.read_text())["install"]}


def test_template_has_dependency_layers():
    names = {logical_id for logical_id, _ in dependency_layers()}
    assert {"CoreDepsLayer", "DataDepsLayer", "MlDepsLayer", "NlpDepsLayer", "ReportDepsLayer"} <= names


@pytest.mark.parametrize("logical_id,folder", dependency_layers(), ids=lambda v: v if isinstance(v, str) else "")
def test_layer_resolves_for_lambda_to_locked_versions(logical_id, folder, tmp_path):
    resolved = resolve_for_lambda(folder / "requirements.txt", tmp_path)
    locked = locked_versions()
    drift = {name: f"layer {version} != lock {locked[name]}"
             for name, version in resolved.items() if name in locked and locked[name] != version}
    assert not drift, f"{logical_id} would ship versions the tests never ran: {drift}"
    unlocked = sorted(set(resolved) - set(locked))
    assert not unlocked, f"{logical_id} resolves packages missing from requirements.lock: {unlocked}"


def makefile_layers() -> list[tuple[str, Path]]:
    return [(logical_id, folder) for logical_id, folder in dependency_layers() if (folder / "Makefile").exists()]


def test_layers_built_by_makefile_are_the_big_ones():
    assert {logical_id for logical_id, _ in makefile_layers()} >= {"MlDepsLayer", "NlpDepsLayer"}


@pytest.mark.parametrize("logical_id,folder", makefile_layers(), ids=lambda v: v if isinstance(v, str) else "")
def test_layer_makefile_builds_for_the_lambda_platform(logical_id, folder):
    """A layer built by its own Makefile (BuildMethod makefile) must ask pip for the same platform."""
    makefile = (folder / "Makefile").read_text()
    assert f"build-{logical_id}:" in makefile, f"sam build runs `make build-{logical_id}`"
    platforms = re.findall(r"--platform\s+(\S+)", makefile)
    assert platforms == ["manylinux2014_x86_64"], platforms
    assert "--only-binary=:all:" in makefile

"""What Lambda loads stays a library: the CLI is a package of its own outside the layer, the layer
never imports the CLI or the local cloud, and the local cloud plugs its commands into the CLI
through an entry point instead of the CLI importing it (no import circle)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

LAYER = ROOT / "layers" / "supportlens" / "python" / "supportlens"
CLI = ROOT / "cli" / "supportlens_cli"
LOCALCLOUD = ROOT / "infra" / "localcloud"


def imported_modules(folder: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def test_the_layer_holds_no_cli_and_imports_neither_cli_nor_local_cloud():
    assert not list(LAYER.glob("cli*.py")), "CLI modules belong in cli/supportlens_cli, not the Lambda layer"
    for path, names in imported_modules(LAYER).items():
        bad = {n for n in names if n.split(".")[0] in ("supportlens_cli", "localcloud")}
        assert not bad, f"{path} imports {bad}"


def test_the_cli_does_not_import_the_local_cloud():
    for path, names in imported_modules(CLI).items():
        assert not {n for n in names if n.split(".")[0] == "localcloud"}, path


def test_the_local_cloud_plugs_its_commands_in_through_the_entry_point():
    from importlib.metadata import entry_points

    from supportlens_cli.main import PLUGIN_GROUP, build_parser

    plugins = {ep.name: ep.value for ep in entry_points(group=PLUGIN_GROUP)}
    assert plugins == {"local": "localcloud.cli:add_local_commands"}
    commands = build_parser()._subparsers._group_actions[0].choices
    assert {"upload", "status", "report", "dashboard", "alerts", "local"} <= set(commands)

"""`supportlens`: the command line for users and operators.

A package of its own, outside the Lambda layer: it uses the `supportlens` library, Lambda never
loads it.

Client commands (upload, status) talk to whatever AWS the environment points at:
the local cloud started by `supportlens local up` (found through .supportlens/local.json),
or a deployed stack (`--stack NAME`, with the usual AWS credentials/profile).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from importlib.metadata import entry_points

from .client import CliError, lineage, print_table, resolve_outputs, summary, upload, wait_for

# Other packages add commands through this entry-point group (a function taking the subparsers), so
# the CLI never imports them: the local cloud plugs `supportlens local ...` in (see pyproject.toml).
PLUGIN_GROUP = "supportlens.commands"


def cmd_upload(args: argparse.Namespace) -> int:
    outputs = resolve_outputs(args.stack)
    file_ids = upload(args.paths, args.source, outputs)
    if not args.wait:
        rows = [{"key": f.rsplit("#", 1)[0], "file_id": f, "status": "uploaded"} for f in file_ids]
    else:
        rows = wait_for(outputs, file_ids, args.timeout, progress=not args.json)
    if args.json:
        for row in rows:
            print(json.dumps(row))
    elif args.wait:
        print_table(rows)
    else:
        for row in rows:
            print(f"uploaded {row['key']}")
    return 0 if all(r["status"] in ("complete", "uploaded") for r in rows) else 2


def cmd_status(args: argparse.Namespace) -> int:
    outputs = resolve_outputs(args.stack)
    rows = [summary(i) for i in lineage(outputs)][: args.limit]
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print_table(rows)
    return 0


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="supportlens", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("upload", help="put files into incoming/ (optionally wait until processed)")
    up.add_argument("paths", nargs="+", type=Path)
    up.add_argument("--source", help="source format (twcs, airline, ticket, ...); default: detected from the header")
    up.add_argument("--wait", action="store_true", help="show progress and return when every file is fully processed")
    up.add_argument("--json", action="store_true", help="one JSON object per file")
    up.add_argument("--timeout", type=float, default=900)
    up.add_argument("--stack", help="deployed stack name (default: the local cloud)")
    up.set_defaults(func=cmd_upload)

    st = sub.add_parser("status", help="recent files and their lineage")
    st.add_argument("--json", action="store_true")
    st.add_argument("--limit", type=int, default=20)
    st.add_argument("--stack")
    st.set_defaults(func=cmd_status)

    from .reports import add_report_commands  # report, alerts

    add_report_commands(sub)

    from .assist import add_assist_commands  # classify, similar, recommend

    add_assist_commands(sub)

    from .models import add_model_commands  # evaluate, train

    add_model_commands(sub)

    for plugin in entry_points(group=PLUGIN_GROUP):  # e.g. `local ...` from the local cloud, when installed
        plugin.load()(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        print(f"supportlens: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

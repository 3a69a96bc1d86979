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

from .client import (CliError, WaitInterrupted, lineage, print_table, quarantine_reasons, resolve_outputs, summary, upload,
                     wait_for)

# Other packages add commands through this entry-point group (a function taking the subparsers), so
# the CLI never imports them: the local cloud plugs `supportlens local ...` in (see pyproject.toml).
PLUGIN_GROUP = "supportlens.commands"


EXIT_NOT_COMPLETE = 2  # a file was rejected, failed or is still being processed
EXIT_QUARANTINED = 3  # every file complete, but some rows were quarantined (reasons printed)


def _exit_code(rows: list[dict[str, Any]]) -> int:
    if not all(r["status"] in ("complete", "uploaded") for r in rows):
        return EXIT_NOT_COMPLETE
    return EXIT_QUARANTINED if any(r.get("rows_quarantined") for r in rows) else 0


def _print_rows(rows: list[dict[str, Any]], as_json: bool, bucket: str) -> None:
    if as_json:
        for row in rows:
            print(json.dumps(row))
    else:
        print_table(rows, bucket)


def cmd_upload(args: argparse.Namespace) -> int:
    outputs = resolve_outputs(args.stack)
    file_ids = upload(args.paths, args.source, outputs)
    if not args.wait:
        for f in file_ids:
            row = {"key": f.rsplit("#", 1)[0], "file_id": f, "status": "uploaded"}
            print(json.dumps(row) if args.json else f"uploaded {row['key']}")
        return 0
    try:
        rows = wait_for(outputs, file_ids, args.timeout, progress=not args.json)
    except WaitInterrupted as stopped:  # say where every file stood, finished ones included
        _print_rows(stopped.rows, args.json, outputs["DataBucketName"])
        raise
    _print_rows(rows, args.json, outputs["DataBucketName"])
    return _exit_code(rows)


def cmd_status(args: argparse.Namespace) -> int:
    outputs = resolve_outputs(args.stack)
    rows = [summary(i) for i in lineage(outputs)][: args.limit]
    _print_rows(rows, args.json, outputs["DataBucketName"])
    return 0


def cmd_quarantine(args: argparse.Namespace) -> int:
    """The quarantined rows of a file: reasons by count, then each row's number and reason (--raw adds the raw row)."""
    from supportlens.adapters import s3

    outputs = resolve_outputs(args.stack)
    bucket = outputs["DataBucketName"]
    key = args.key.removeprefix(f"s3://{bucket}/")
    if not key.startswith("quarantine/"):  # an uploaded file's key or name: its newest lineage says where
        matches = [summary(i) for i in lineage(outputs) if args.key in (i.get("key"), i["file_id"].rsplit("#", 1)[0],
                                                                           str(i.get("key", "")).rsplit("/", 1)[-1])]
        if not matches or not matches[0].get("quarantine_key"):
            raise CliError(f"{args.key}: no quarantined rows recorded for it (see `supportlens status`)")
        key = matches[0]["quarantine_key"]
    raw = s3.get_bytes_if_exists(bucket, key)
    if raw is None:
        raise CliError(f"s3://{bucket}/{key} does not exist (quarantine objects expire: see the README)")
    records = []
    for line in raw.decode("utf-8", errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    if args.json:
        for r in records:
            print(json.dumps(r if args.raw else {k: v for k, v in r.items() if k != "raw"}, default=str))
        return 0
    print(f"s3://{bucket}/{key}: {len(records)} quarantined record(s)")
    for reason, n in quarantine_reasons(bucket, key, top=None):
        print(f"  {n:6}  {reason}")
    for r in records[: args.limit]:
        print(f"  row {r.get('row', '-')}: {r.get('reason')}" + (f"\n      raw: {str(r.get('raw'))[:300]}" if args.raw else ""))
    return 0


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="supportlens", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("upload", help="put files into incoming/ (optionally wait until processed)")
    up.add_argument("paths", nargs="+", type=Path, help="files, or folders (their files)")
    up.add_argument("--source", help="source format (twcs, airline, ticket, ...); default: detected from the header")
    up.add_argument("--wait", action="store_true", help="show progress and return when every file is fully processed; exit 0 "
                    "when all are complete, 2 when one is not, 3 when rows were quarantined (the top reasons are printed)")
    up.add_argument("--json", action="store_true", help="one JSON object per file")
    up.add_argument("--timeout", type=float, default=900, help="seconds --wait waits at most (default 900)")
    up.add_argument("--stack", help="deployed stack name (default: the local cloud)")
    up.set_defaults(func=cmd_upload)

    st = sub.add_parser("status", help="recent files and their lineage")
    st.add_argument("--json", action="store_true")
    st.add_argument("--limit", type=int, default=20)
    st.add_argument("--stack")
    st.set_defaults(func=cmd_status)

    qu = sub.add_parser("quarantine", help="why rows of a file were quarantined (reasons by count, then per row)")
    qu.add_argument("key", help="the uploaded file's name or key, or a quarantine/ key (as `status` shows)")
    qu.add_argument("--raw", action="store_true", help="also print the raw rows (they may hold personal data)")
    qu.add_argument("--limit", type=int, default=20, help="rows to list (default 20)")
    qu.add_argument("--json", action="store_true")
    qu.add_argument("--stack")
    qu.set_defaults(func=cmd_quarantine)

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
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError, NoRegionError

    try:
        return args.func(args)
    except CliError as exc:
        print(f"supportlens: {exc}", file=sys.stderr)
        return 1
    except EndpointConnectionError as exc:  # said in one line, not as a traceback
        print(f"supportlens: cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')}: is the local cloud running "
              "(`supportlens local up`; a stale .supportlens/local.json is removed by `supportlens local down`), "
              "or is --stack/AWS_ENDPOINT_URL right?", file=sys.stderr)
        return 1
    except (NoCredentialsError, NoRegionError) as exc:
        print(f"supportlens: {exc} (for a deployed stack, configure AWS credentials and a region)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

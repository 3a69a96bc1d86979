"""`supportlens classify | similar | recommend "text"`: agent assist against the target's published
models (the local cloud, or `--stack NAME` on AWS). The use case runs in this process and reads
models/ from the target's bucket, embedding the text like the target's functions do."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from .client import CliError, resolve_outputs


def target_assistant(stack: str | None):
    from .reports import target_parameters
    from supportlens.logic.assist import Assistant
    from supportlens.observability import logger
    from supportlens.settings import Settings

    logger().setLevel("ERROR")  # the command prints its own answer; keep stdout clean for --json
    outputs = resolve_outputs(stack)
    params = target_parameters(stack)
    env = dict(os.environ)
    # Embed like the target's functions (same provider and model), unless overridden here.
    for name, param in (("EMBEDDING_PROVIDER", "EmbeddingProvider"), ("GEMINI_MODEL", "GeminiModel"),
                        ("GEMINI_API_KEY_PARAMETER", "GeminiApiKeyParameter"), ("ASSIST_GENERATION_MODEL", "AssistGenerationModel")):
        if not env.get(name) and params.get(param):
            env[name] = params[param]
    try:
        settings = Settings.from_env({**env, "DATA_BUCKET": outputs["DataBucketName"]})
    except KeyError as exc:
        raise CliError(f"the target's stack outputs lack {exc}: is it a SupportLens stack?") from None
    return Assistant(settings)


def _run(args: argparse.Namespace, request: dict[str, Any]) -> dict[str, Any]:
    from supportlens.logic.assist import AssistError

    assistant = target_assistant(args.stack)
    try:
        return assistant.handle(request)
    except AssistError as exc:
        raise CliError(exc.message) from None


def _print_json(answer: dict[str, Any]) -> None:
    print(json.dumps(answer, ensure_ascii=False))


def cmd_classify(args: argparse.Namespace) -> int:
    answer = _run(args, {"operation": "classify", "text": args.text})
    if args.json:
        _print_json(answer)
        return 0
    r = answer["result"]
    if r.get("confident", True):
        print(f"{r['issue_id']}  {r['label']}" + (f"  ({r['kind']})" if r.get("kind") == "bucket" else ""))
    else:
        nearest = r.get("nearest") or {}
        print(f"{r['label']} (below {r.get('threshold', 0.5):.2f}); nearest {nearest.get('issue_id')}  {nearest.get('label')}")
    if r.get("by_rule"):  # a thank-you, a greeting, a language: its rule decided, no similarity to speak of
        print(f"  not an issue: the {r['label']} rule matched the text, model {answer['model_version']}")
        return 0
    # Two numbers that read alike: say what each measures (an agent asked why 0.62 similar is 0.30 confident).
    print(f"  similarity {r['similarity']:.2f} (cosine to the issue's centre); confidence {r['confidence']:.2f} "
          f"(how many of the {r['neighbours']} nearest past tickets are in it, times closeness to its typical ticket; "
          f"below {r.get('threshold', 0.5):.2f}: no confident match), model {answer['model_version']}")
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    answer = _run(args, {"operation": "similar", "text": args.text, "k": args.k, "company": args.company})
    if args.json:
        _print_json(answer)
        return 0
    if answer["result"].get("company_note"):
        print(f"note: {answer['result']['company_note']}")
    for n, m in enumerate(answer["result"]["matches"], 1):
        print(f"{n}. {m['similarity']:.2f}  {m['ticket_id']}  [{m['issue_label'] or m['issue_id']}]  {m['company']} {m['day']}")
        print(f"   {m['text']}")
        if m["reply"]:
            print(f"   reply ({m['reply']['ticket_id']}): {m['reply']['text']}")
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    answer = _run(args, {"operation": "recommend", "text": args.text, "company": args.company})
    if args.json:
        _print_json(answer)
        return 0
    r = answer["result"]
    if not r.get("reply"):
        print(f"no recommendation: {r.get('reason')}")
        return 3
    print(r["reply"])
    if r.get("company_note"):
        print(f"  note: {r['company_note']}; this reply is {r['company']}'s (it names no brand)")
    elif r.get("same_company") is False:  # asked for one company, none of its replies was close and safe enough
        print(f"  no reply of {args.company} was similar enough; this one is {r['company']}'s (it names no brand)")
    print(f"  from {r['company']}'s reply {r['reply_ticket_id']} to {r['source_ticket_id']} "
          f"(similarity {r['similarity']:.2f}, agreement {r['agreement']:.2f}{', rewritten' if r['rewritten'] else ''})")
    for alt in r["alternatives"]:
        print(f"  alternative ({alt['reply_ticket_id']}): {alt['reply']}")
    return 0


def add_assist_commands(sub: Any) -> None:
    for name, func, help_text in (("classify", cmd_classify, "the issue a ticket text belongs to"),
                                  ("similar", cmd_similar, "the most similar past tickets, with the company's replies"),
                                  ("recommend", cmd_recommend, "a reply drawn from replies to the most similar past tickets")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("text", help="the customer's message")
        if name == "similar":
            p.add_argument("-k", type=int, default=5, help="how many tickets (default 5)")
        if name != "classify":
            p.add_argument("--company", help="only tickets of this company (brand)")
        p.add_argument("--json", action="store_true", help="the JSON response of the Assist contract")
        p.add_argument("--stack", help="deployed stack name (default: the local cloud)")
        p.set_defaults(func=func)

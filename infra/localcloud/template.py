"""Translate template.yaml offline (aws-sam-translator) and resolve CloudFormation intrinsics.

The translated template is the only list of resources: the deployer creates what
it describes, so a change to template.yaml shows up locally with nothing else to edit.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

CODE_BUCKET = "supportlens-local-code"
NO_VALUE = object()


class _NoManagedPolicies:
    """The translator asks IAM for managed policy ARNs only when a template names one."""

    def load(self) -> dict[str, str]:
        return {}


def load_template(path: Path) -> dict[str, Any]:
    return yaml_parse(path.read_text())


def translate(path: Path, parameters: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Path]]:
    """(CloudFormation template, {s3 key: local directory}) for a SAM template on disk."""
    template = load_template(path)
    code_dirs: dict[str, Path] = {}
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        for field in ("CodeUri", "ContentUri"):
            value = props.get(field)
            if isinstance(value, str) and not value.startswith("s3://"):
                local = (path.parent / value).resolve()
                key = local.relative_to(path.parent.resolve()).as_posix() or "."
                code_dirs[key] = local
                props[field] = f"s3://{CODE_BUCKET}/{key}"
    session = boto3.session.Session(region_name=str(parameters.get("AWS::Region", "us-east-1")))
    translator = Translator(None, Parser(), boto_session=session)
    translated = translator.translate(
        copy.deepcopy(template), dict(parameters), get_managed_policy_map=_NoManagedPolicies().load
    )
    return json.loads(json.dumps(translated)), code_dirs


def parameter_values(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in overrides:
            values[name] = overrides[name]
        elif "Default" in spec:
            values[name] = spec["Default"]
        else:
            raise ValueError(f"template parameter {name} has no default: pass --param {name}=VALUE")
        if spec.get("Type") == "CommaDelimitedList" and isinstance(values[name], str):
            values[name] = [v.strip() for v in values[name].split(",")]
    unknown = set(overrides) - set(template.get("Parameters", {}))
    if unknown:
        raise ValueError(f"unknown template parameter(s): {', '.join(sorted(unknown))}")
    return values


def references(node: Any) -> set[str]:
    """Logical ids a piece of template refers to (Ref, GetAtt, Sub)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)}
                if isinstance(value, list):
                    found |= references(value[1])
            else:
                found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def deploy_order(resources: dict[str, Any]) -> list[str]:
    """Logical ids with every dependency (refs and DependsOn) before its dependants."""
    deps: dict[str, set[str]] = {}
    for name, resource in resources.items():
        depends = resource.get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else depends
        deps[name] = (references(resource.get("Properties", {})) | set(depends)) & set(resources)
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(resources):
        ready = sorted(n for n in resources if n not in done and deps[n] <= done)
        if not ready:
            raise ValueError(f"circular dependency among {sorted(set(resources) - done)}")
        order.extend(ready)
        done.update(ready)
    return order


class Resolver:
    """Evaluates intrinsic functions against parameters, conditions and deployed resources."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, Any], pseudo: dict[str, str]):
        self.parameters = parameters
        self.pseudo = pseudo
        self.refs: dict[str, Any] = {}
        self.attrs: dict[str, dict[str, Any]] = {}
        self.conditions: dict[str, bool] = {}
        raw_conditions = template.get("Conditions", {})
        for name in raw_conditions:
            self._condition(name, raw_conditions)

    def _condition(self, name: str, raw: dict[str, Any]) -> bool:
        if name not in self.conditions:
            self._raw_conditions = raw
            self.conditions[name] = bool(self.resolve(raw[name]))
        return self.conditions[name]

    def ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.refs:
            return self.refs[name]
        raise KeyError(f"Ref to {name}, which is not deployed (yet)")

    def getatt(self, name: str, attribute: str) -> Any:
        try:
            return self.attrs[name][attribute]
        except KeyError:
            raise KeyError(f"GetAtt {name}.{attribute} is not available locally") from None

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                return str(self.resolve(variables[expr]))
            if "." in expr and expr.split(".")[0] in self.attrs:
                res, att = expr.split(".", 1)
                return str(self.getatt(res, att))
            return str(self.ref(expr))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(i) for i in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, value), = node.items()
            if key == "Ref":
                return self.ref(value)
            if key == "Fn::GetAtt":
                name, attribute = value if isinstance(value, list) else value.split(".", 1)
                return self.getatt(name, attribute)
            if key == "Fn::Sub":
                if isinstance(value, list):
                    return self.sub(value[0], value[1])
                return self.sub(value, {})
            if key == "Fn::Join":
                return value[0].join(str(v) for v in self.resolve(value[1]))
            if key == "Fn::If":
                cond = self.conditions.get(value[0])
                if cond is None:
                    cond = self._condition(value[0], self._raw_conditions)
                return self.resolve(value[1] if cond else value[2])
            if key == "Fn::Equals":
                a, b = self.resolve(value)
                return a == b
            if key == "Fn::Not":
                return not self.resolve(value[0])
            if key == "Fn::And":
                return all(self.resolve(value))
            if key == "Fn::Or":
                return any(self.resolve(value))
            if key == "Condition":
                return self.conditions[value]
            if key == "Fn::Select":
                return self.resolve(value[1])[int(self.resolve(value[0]))]
            if key == "Fn::Split":
                return str(self.resolve(value[1])).split(value[0])
            if key == "Fn::ToJsonString":
                return json.dumps(self.resolve(value))
        out = {}
        for key, value in node.items():
            resolved = self.resolve(value)
            if resolved is not NO_VALUE:
                out[key] = resolved
        return out

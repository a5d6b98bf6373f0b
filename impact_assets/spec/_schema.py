"""The spec's JSON Schema, for editors, and a Markdown reference generated from it, for people.

Both come from the pydantic models the loader validates with, so neither can drift from what it
accepts; a test compares the published copies with freshly generated ones.
"""

from __future__ import annotations

import json
from typing import Any

from impact_assets.spec._assessment import AssessmentSpec

__all__ = ["SCHEMA_ID", "json_schema", "markdown_reference"]

SCHEMA_ID = "https://impact-assets.readthedocs.io/spec/assessment/1-0-0/assessment.schema.json"


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of an assessment YAML file."""
    schema = AssessmentSpec.model_json_schema(mode="validation", by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    for key in ("anyOf", "oneOf"):
        if key in prop:
            return " or ".join(_type(p) for p in prop[key])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        return f"map to {_type(prop['additionalProperties'])}"
    if kind == "object" and prop.get("patternProperties"):
        (value,) = prop["patternProperties"].values()
        return f"map of identifiers to {_type(value)}"
    return str(kind)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _meaning(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    """The field's description, else the description of the object it refers to."""
    if "description" in prop:
        return prop["description"]
    for ref in [prop, *prop.get("anyOf", []), *prop.get("oneOf", [])]:
        if "$ref" in ref:
            return defs[ref["$ref"].rsplit("/", 1)[-1]].get("description", "")
    return ""


def markdown_reference() -> str:
    """Every object of the spec as a table of its keys: type, required, default, meaning."""
    schema = json_schema()
    defs = schema.get("$defs", {})
    lines = [
        "# Assessment spec reference",
        "",
        "Generated from the spec's models by `impact-assets schema --markdown` (a test keeps this file",
        "current); the same models give the JSON Schema, `assessment.schema.json`. The top-level object",
        "is `AssessmentSpec`; a register entry's `measure` is one of the `...Ref` objects, picked by its",
        "`source`.",
        "",
    ]
    for name, definition in [("AssessmentSpec", schema), *sorted(defs.items())]:
        lines += [f"### {name}", "", _cell(definition.get("description", "")), ""]
        required = set(definition.get("required", []))
        lines += ["| key | type | required | default | meaning |", "|---|---|---|---|---|"]
        for key, prop in definition.get("properties", {}).items():
            default = f"`{json.dumps(prop['default'])}`" if "default" in prop else ""
            lines.append(
                f"| `{key}` | {_type(prop)} | {'yes' if key in required else ''} "
                f"| {_cell(default)} | {_cell(_meaning(prop, defs))} |"
            )
        lines.append("")
    return "\n".join(lines)

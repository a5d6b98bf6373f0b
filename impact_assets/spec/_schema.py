"""The spec's JSON Schema, for editors' completion and validation of assessment YAML files.

It comes from the pydantic models, so it cannot drift from what the loader accepts.
"""

from __future__ import annotations

from typing import Any

from impact_assets.spec._models import AssessmentSpec

__all__ = ["SCHEMA_ID", "json_schema"]

SCHEMA_ID = "https://impact-assets.readthedocs.io/spec/assessment/1-0-0/assessment.schema.json"


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of an assessment YAML file."""
    schema = AssessmentSpec.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}

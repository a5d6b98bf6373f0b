"""Load an assessment YAML into an :class:`AssessmentSpec`, with file, line and field in every error."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import ValidationError

from impact_assets.errors import SpecError
from impact_assets.spec._assessment import AssessmentSpec
from impact_assets.spec._oversight import Channel
from impact_assets.spec._references import reference_errors
from impact_assets.spec._register import MetricRef

__all__ = ["SpecSource", "load_spec", "spec_error"]

YAML_SYNTAX = "the file is not valid YAML: {problem}"
NOT_A_MAPPING = "an assessment spec must be a YAML mapping at the top level"
DUPLICATE_KEY = "key {key!r} appears twice in the same mapping"
INVALID_FIELD = "{message}"

Location = tuple[str | int, ...]
#: The ``source`` values of the measure references (pydantic's tags of that union in error locations).
_MEASURE_TAGS = frozenset(
    get_args(ref.model_fields["source"].annotation)[0] for ref in get_args(get_args(MetricRef)[0])
)
_CHANNEL_TAGS = frozenset(
    get_args(kind.model_fields["kind"].annotation)[0] for kind in get_args(get_args(Channel)[0])
)


#: libyaml's parser when PyYAML has it (about ten times faster than the pure-Python one).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SpecSource:
    """A spec file's text and where each field of it sits (1-based lines)."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text
        self.lines: dict[Location, int] = {}

    def line_of(self, loc: Iterable[str | int]) -> int:
        """Line of the deepest known field on ``loc`` (a pydantic error location)."""
        loc = tuple(loc)
        while loc and loc not in self.lines:
            loc = loc[:-1]
        return self.lines.get(loc, 1)

    def error(self, loc: Iterable[str | int], message: str) -> SpecError:
        """A :class:`SpecError` pointing at the field ``loc``."""
        loc = tuple(loc)
        field = ".".join(str(p) for p in loc) or "<root>"
        return SpecError(
            message, context={"file": str(self.path), "line": self.line_of(loc), "field": field}
        )


def spec_error(source: SpecSource, problems: list[tuple[Location, str]]) -> SpecError:
    """One error for several problems: the first names file/line/field, the message lists all."""
    first = source.error(problems[0][0], problems[0][1])
    if len(problems) == 1:
        return first
    listing = "; ".join(
        f"line {source.line_of(loc)} {'.'.join(map(str, loc))}: {msg}" for loc, msg in problems
    )
    return SpecError(f"{len(problems)} problems in the spec: {listing}", context=first.context)


def _index_lines(node: yaml.Node, at: Location, source: SpecSource) -> None:
    source.lines[at] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                source.lines[(*at, key)] = key_node.start_mark.line + 1
                raise source.error((*at, key), DUPLICATE_KEY.format(key=key))
            seen.add(key)
            _index_lines(value_node, (*at, key), source)
            source.lines[(*at, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, (*at, i), source)


def _describe(error: dict[str, Any]) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"unknown key {error['loc'][-1]!r}"
    return INVALID_FIELD.format(message=message)


def _suggest_keys(source: SpecSource, loc: Location, model_fields: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(loc[-1]), list(model_fields), n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def load_spec(path: str | Path) -> tuple[AssessmentSpec, SpecSource]:
    """Parse and validate one assessment file.

    Args:
        path: The YAML file.

    Returns:
        The validated spec and its :class:`SpecSource`, for errors found later (e.g. against SQL).

    Raises:
        SpecError: Invalid YAML, unknown keys, wrong types, broken cross-references; the message
            names the file, the line and the field.
    """
    path = Path(path)
    source = SpecSource(path, path.read_text(encoding="utf-8"))
    try:
        loader = _LOADER(source.text)
        try:
            root = loader.get_single_node()
            data = None if root is None else loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(
            YAML_SYNTAX.format(problem=problem), context={"file": str(path), "line": line}
        ) from exc
    if root is None or not isinstance(data, dict):
        raise SpecError(NOT_A_MAPPING, context={"file": str(path), "line": 1})
    _index_lines(root, (), source)
    try:
        spec = AssessmentSpec.model_validate(data)
    except ValidationError as exc:
        problems: list[tuple[Location, str]] = []
        for err in exc.errors():
            # Drop the tags pydantic inserts after a discriminated union (``measure``, a channel
            # of ``notifications.channels``): they are no keys.
            raw = err["loc"]
            loc = tuple(
                p
                for i, p in enumerate(raw)
                if not (i > 0 and raw[i - 1] == "measure" and p in _MEASURE_TAGS)
                and not (i > 1 and raw[i - 2] == "channels" and p in _CHANNEL_TAGS)
            )
            message = _describe(err)
            if err["type"] == "extra_forbidden":
                message += _suggest_keys(source, loc, _fields_at(loc))
            problems.append((loc, message))
        raise spec_error(source, problems) from None
    problems = reference_errors(spec)
    if problems:
        raise spec_error(source, problems)
    return spec, source


def _fields_at(loc: Location) -> list[str]:
    """Field names of the model that owns ``loc`` (for 'did you mean' hints)."""
    model: Any = AssessmentSpec
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = _model_in(field.annotation)
    return list(getattr(model, "model_fields", {}))


def _model_in(annotation: Any) -> Any:
    from typing import get_args

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None

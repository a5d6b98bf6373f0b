"""Great Expectations 1.x: the catalog of expectation names, and building expectations from a spec."""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import os
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "UNKNOWN_EXPECTATION",
    "build_expectation",
    "check_expectation",
    "expectation_classes",
    "gx",
]

UNKNOWN_EXPECTATION = "unknown expectation {name!r}{hint}"
BAD_ARGUMENTS = "invalid arguments for {name}: {problems}"


@functools.cache
def gx() -> Any:
    """The ``great_expectations`` module, imported once and quietly (its dependencies import deprecated modules).

    The filters stay: ``warnings.catch_warnings`` saves and restores the process's whole filter list,
    which is not safe while the import runs on a warm-up thread (another thread's filters could be
    dropped or kept by mistake); these narrow filters hide nothing else. GX imports PySpark when it is
    installed (the ``spark`` extra), and PySpark 4 then warns, twice, that it does not fully support
    pandas 3: about PySpark's own pandas conversions, which GX's import does not use.
    """
    warnings.filterwarnings(
        "ignore", message="module 'sre_.*' is deprecated", category=DeprecationWarning
    )
    warnings.filterwarnings(
        "ignore",
        message="PySpark does not yet fully support pandas",
        category=FutureWarning,
        module=r"pyspark\.",
    )
    import great_expectations

    return great_expectations


@functools.cache
def expectation_classes() -> dict[str, type]:
    """Every core expectation class by its snake_case name (``expect_column_values_to_not_be_null``...)."""
    module = gx().expectations
    classes = {}
    for attribute in dir(module):
        cls = getattr(module, attribute)
        name = getattr(cls, "expectation_type", None)
        if attribute.startswith("Expect") and isinstance(name, str):
            classes[name] = cls
    return classes


def build_expectation(name: str, kwargs: dict[str, Any]) -> Any:
    """Instantiate an expectation, validating its arguments with GX's own models.

    Raises:
        ValueError: The name is not a GX expectation (with close matches) or the arguments are invalid.
    """
    classes = expectation_classes()
    if name not in classes:
        close = difflib.get_close_matches(name, list(classes), n=3, cutoff=0.6)
        hint = (
            f" (did you mean {', '.join(repr(c) for c in close)}?)"
            if close
            else f" (known: {len(classes)} GX expectations)"
        )
        raise ValueError(UNKNOWN_EXPECTATION.format(name=name, hint=hint))
    try:
        return classes[name](**kwargs)
    except (
        Exception
    ) as exc:  # GX raises pydantic (v1) ValidationError or TypeError for bad arguments
        errors = getattr(exc, "errors", None)
        problems = (
            "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in errors())
            if callable(errors)
            else str(exc)
        )
        raise ValueError(BAD_ARGUMENTS.format(name=name, problems=problems)) from None


def _accepted_file() -> Path:
    home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(home) / "impact-assets" / "accepted-expectations.json"


def _accepted() -> set[str]:
    try:
        return set(json.loads(_accepted_file().read_text()))
    except (OSError, ValueError):
        return set()


def check_expectation(name: str, kwargs: dict[str, Any]) -> None:
    """Check an expectation as :func:`build_expectation` does, without importing GX for one it
    accepted before.

    Definitions load in every process (a code server, a run, a sensor tick, ``impact-assets
    validate``), and importing GX takes several seconds. A configuration GX accepted is remembered
    in the user's cache folder (``$XDG_CACHE_HOME/impact-assets``, default ``~/.cache``) under the
    installed GX version; any other is built by GX, so its error is GX's own.

    Raises:
        ValueError: As :func:`build_expectation`.
    """
    key = hashlib.sha256(
        json.dumps(
            [metadata.version("great_expectations"), name, kwargs], sort_keys=True, default=str
        ).encode()
    ).hexdigest()
    if key in _accepted():
        return
    build_expectation(name, kwargs)
    path = _accepted_file()
    written = ""
    try:  # written whole and renamed into place: a reader never sees half a file
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as out:
            written = out.name
            json.dump(sorted(_accepted() | {key}), out)
        os.replace(written, path)
    except OSError:  # no cache folder, or a full disk: GX is imported again next time
        if written:
            Path(written).unlink(missing_ok=True)

"""The package's one exception root and the error texts users see.

Domain modules raise :class:`ImpactAssetsError` (or a subclass) with structured context: the spec
file and line, the SQL model, the table or column at fault. The Dagster adapters turn it into a
``dagster.Failure`` carrying the same context as metadata, so a failed run says what is wrong and where.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "DataContractError",
    "ImpactAssetsError",
    "LineageConfigError",
    "ModelRegistryError",
    "OversightError",
    "SpecError",
    "SqlModelError",
    "StorageError",
]


class ImpactAssetsError(Exception):
    """Root of every error raised by impact-assets.

    Args:
        message: What is wrong, in one sentence a user can act on.
        context: Where it is wrong: ``file``, ``line``, ``field``, ``model``, ``table``, ``column``...
    """

    def __init__(self, message: str, *, context: Mapping[str, Any] | None = None) -> None:
        self.message = message
        self.context: dict[str, Any] = {k: v for k, v in (context or {}).items() if v is not None}
        super().__init__(self._render())

    def _render(self) -> str:
        where = ", ".join(f"{key}={value}" for key, value in self.context.items())
        return f"{self.message} [{where}]" if where else self.message


class SpecError(ImpactAssetsError):
    """An assessment spec (YAML) is invalid; raised when definitions load."""


class SqlModelError(ImpactAssetsError):
    """A ``dbt_like_sql`` model cannot be parsed, resolved or executed."""


class DataContractError(ImpactAssetsError):
    """The data of a partition breaks what the spec binds it to (types, binary labels, nulls)."""


class ModelRegistryError(ImpactAssetsError):
    """A model version cannot be found, loaded or used to score."""


class LineageConfigError(ImpactAssetsError):
    """The OpenLineage configuration names a missing file or a transport that cannot be built."""


class StorageError(ImpactAssetsError):
    """The results database cannot be opened, migrated or written."""


class OversightError(ImpactAssetsError):
    """A human decision (on an action or a release) or a notification channel cannot be accepted."""

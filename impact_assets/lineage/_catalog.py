"""What each asset of an assessment reads and writes, as OpenLineage datasets and job facets.

Dataset names follow the OpenLineage naming conventions where they define the store, and their pattern
where they do not:

* a DuckDB table: namespace ``duckdb://{host}{absolute path of the database file}`` (the file is the
  database instance, as ``postgres://{host}:{port}`` is for PostgreSQL), name
  ``{catalog}.{schema}.{table}`` with DuckDB's catalog name (the file's stem);
* raw files: the local file system's ``file`` namespace, named by the absolute directory that holds the
  source's files (one dataset for all daily batches, as the Spark integration names a partitioned
  directory);
* a table the Spark engine writes: its Parquet folder, by the location's scheme (``file`` and the absolute
  path; ``s3://{bucket}``, ``hdfs://{namenode}:{port}``, ``gs://{bucket}``... and the path), as the
  Spark integration names a table by its location, with the table's ``schema.table`` name in a symlinks
  facet;
* the model: the registry folder in the ``file`` namespace (or ``mlflow`` and the registered model's
  name), with the model version as the dataset version.
"""

from __future__ import annotations

import glob
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dagster as dg

from impact_assets.assessment import Assessment
from impact_assets.engine import table_location

__all__ = ["AssetLineage", "Dataset", "LineageCatalog"]


@dataclass(frozen=True)
class Dataset:
    namespace: str
    name: str
    kind: str  # "table", "files" or "model"
    file_format: str | None = None
    description: str | None = None
    table: str | None = None  # a file dataset's name in its engine's catalog (symlinks facet)


@dataclass(frozen=True)
class AssetLineage:
    """One asset: its OpenLineage job name, what it reads and writes, and its job facets' sources."""

    key: dg.AssetKey
    assessment: Assessment
    job_name: str
    inputs: tuple[Dataset, ...]
    outputs: tuple[Dataset, ...]
    description: str
    sql: str | None = None
    column_lineage: dict[str, list[tuple[Dataset, str]]] = field(default_factory=dict)


def _duckdb_table(database: Path, qualified: str) -> Dataset:
    namespace = f"duckdb://{socket.gethostname()}{database.resolve().as_posix()}"
    return Dataset(namespace, f"{database.stem}.{qualified}", "table")


def _location(uri: str) -> tuple[str, str]:
    """OpenLineage namespace and name of a storage location (local path or URI)."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        return "file", Path(parts.path if parts.scheme else uri).resolve().as_posix()
    scheme = {"s3a": "s3", "s3n": "s3"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}", parts.path


def _files(pattern: Path, file_format: str, description: str) -> Dataset:
    fixed: list[str] = []
    for part in pattern.parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Dataset("file", Path(*fixed).resolve().as_posix(), "files", file_format, description)


def _model(registry_path: str) -> Dataset:
    if registry_path.startswith("mlflow:"):
        return Dataset("mlflow", registry_path.removeprefix("mlflow:"), "model")
    return Dataset("file", Path(registry_path).resolve().as_posix(), "model")


class LineageCatalog:
    """Lineage of every asset of the given assessments, from their Dagster definitions.

    Args:
        assessments: The assessments of the code location.
        graph: Their asset graph (``Definitions.resolve_asset_graph()`` or a repository's
            ``asset_graph``): each asset's upstream assets and metadata.
        namespace: OpenLineage job namespace; ``OPENLINEAGE_NAMESPACE``, else ``impact-assets``.
    """

    def __init__(
        self, assessments: Iterable[Assessment], graph: Any, namespace: str | None = None
    ) -> None:
        self.namespace = namespace or os.getenv("OPENLINEAGE_NAMESPACE") or "impact-assets"
        self.assets: dict[dg.AssetKey, AssetLineage] = {}
        self.datasets: dict[dg.AssetKey, Dataset] = {}
        by_id = {a.id: a for a in assessments}
        outputs = self.datasets
        for node in graph.asset_nodes:
            assessment = by_id.get(node.key.path[0])
            if assessment is not None:
                outputs[node.key] = self._output(assessment, node)
        for node in graph.asset_nodes:
            assessment = by_id.get(node.key.path[0])
            if assessment is None or not node.is_materializable:
                continue
            inputs = [outputs[p] for p in sorted(node.parent_keys) if p in outputs]
            registry = node.metadata.get("impact_assets/registry")
            name = node.key.path[-1]
            if name == "predictions" and registry:
                inputs.append(_model(str(registry)))
            model = assessment.sql.models.get(name)
            lineage: dict[str, list[tuple[Dataset, str]]] = {}
            if model is not None and len(node.key.path) == 2 + len(model.prefix):
                # None: sqlglot could not resolve the columns (e.g. an unknown source schema)
                for column, deps in (assessment.sql.column_lineage.get(name) or {}).items():
                    lineage[column] = [
                        (self._table_of(assessment, d.table), d.column) for d in deps
                    ]
            self.assets[node.key] = AssetLineage(
                key=node.key,
                assessment=assessment,
                job_name=".".join(node.key.path),
                inputs=tuple(dict.fromkeys(inputs)),
                outputs=(outputs[node.key],),
                description=node.description or "",
                sql=model.sql.strip() if model is not None else None,
                column_lineage=lineage,
            )

    def _table_of(self, assessment: Assessment, table: str) -> Dataset:
        if table in assessment.spec.sources:
            source = assessment.spec.sources[table]
            return _files(assessment.source_path(table), source.format, source.description)
        return self._data_table(assessment, table)

    @staticmethod
    def _data_table(assessment: Assessment, table: str) -> Dataset:
        """A table of the SQL models or the predictions: in DuckDB, or Parquet the Spark engine wrote."""
        engine = assessment.spec.engine
        if engine.kind == "spark":
            namespace, name = _location(
                table_location(engine.spark, assessment.schema, table, assessment.paths.expand)
            )
            return Dataset(
                namespace, name, "files", "parquet", table=f"{assessment.schema}.{table}"
            )
        return _duckdb_table(assessment.paths.database, f"{assessment.schema}.{table}")

    def _output(self, assessment: Assessment, node) -> Dataset:
        metadata = node.metadata
        if "impact_assets/path" in metadata:
            source = assessment.spec.sources[node.key.path[-1]]
            return _files(
                Path(str(metadata["impact_assets/path"])), source.format, source.description
            )
        if "dagster/table_name" in metadata:
            name = str(metadata["dagster/table_name"])
            if name.startswith(f"{assessment.schema}."):  # a data table, not an impact.* result
                return self._data_table(assessment, name.removeprefix(f"{assessment.schema}."))
            return _duckdb_table(assessment.paths.database, name)
        return _model(str(metadata.get("impact_assets/registry", "")))

    def for_step(self, step_key: str | None) -> AssetLineage | None:
        """The asset computed by a step (an asset's step key is its key path joined by ``__``)."""
        if step_key is None:
            return None
        for key, asset in self.assets.items():
            if "__".join(key.path) == step_key:
                return asset
        return None

    def dataset_of(self, key: dg.AssetKey) -> Dataset | None:
        """The dataset an asset (a source too) stands for."""
        return self.datasets.get(key)

"""The Spark engine: the row-level steps of an assessment on a Spark cluster, aggregates back.

:class:`SparkEngine` answers the calls the pipeline makes of a DuckDB connection for row-level work
(``execute(sql, params)`` returning rows or a small pandas frame), transpiling each DuckDB statement
with :func:`to_spark`. The tables it writes (the SQL models and the predictions) are Parquet files under
the warehouse, one folder per day, ``<warehouse>/<schema>/<table>/<YYYY-MM-DD>/``; a day is written
to a hidden folder first and then renamed into place, so readers never see half a day. Sources and
tables are registered in the session's catalog under the assessment's schema, so the same qualified
names resolve on both engines.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from impact_assets.engine._transpile import TranspileError, to_spark
from impact_assets.errors import ImpactAssetsError, SqlModelError
from impact_assets.sql import MaterializedPartition, SqlModel, ident

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "MASTER_ENV",
    "NO_PYSPARK",
    "SparkEngine",
    "SparkEngineError",
    "engine_for",
    "spark_session",
    "table_location",
]

#: Environment variable that overrides the spec's ``spark.master`` for a deployment.
MASTER_ENV = "IMPACT_ASSETS_SPARK_MASTER"

NO_PYSPARK = (
    "the engine is spark, but PySpark is not installed (pip install 'impact-assets[spark]')"
)
QUERY_FAILED = "Spark could not run the query: {message}"
NOT_TRANSPILED = "the query has no Spark form: {reason}"

_DEFAULTS = {
    "spark.app.name": "impact-assets",
    "spark.ui.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.adaptive.enabled": "true",
}

_LOCK = threading.Lock()


class SparkEngineError(ImpactAssetsError):
    """Spark is missing, cannot start, or refuses a query of the assessment."""


def spark_session(master: str, conf: Mapping[str, Any], warehouse: str) -> SparkSession:
    """The process's Spark session (created on first use; Spark allows one per process).

    Its catalog's folders (one empty ``<schema>.db`` per database) go under ``warehouse``, not
    into the working directory.

    Raises:
        SparkEngineError: PySpark is not installed.
    """
    # PySpark warns that it does not fully support pandas 3; what the engine converts (aggregates to
    # pandas, batches of mapInPandas) is checked against DuckDB by the tests
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkEngineError(NO_PYSPARK) from None
    builder = SparkSession.builder.master(master)
    settings = {
        **_DEFAULTS,
        "spark.sql.warehouse.dir": f"{warehouse}/_catalog",
        **{k: str(v) for k, v in conf.items()},
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    with _LOCK:
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def _failed(exc: Exception, sql: str | None = None) -> SparkEngineError:
    return SparkEngineError(
        QUERY_FAILED.format(message=str(exc).strip().splitlines()[0]),
        context={"spark_sql": sql},
    )


class _Rows:
    """The answer of :meth:`SparkEngine.execute`, read the way a DuckDB result is."""

    def __init__(self, frame: DataFrame, sql: str) -> None:
        self._frame, self._sql = frame, sql

    def fetchall(self) -> list[tuple]:
        from pyspark.errors import PySparkException

        try:
            return [tuple(row) for row in self._frame.collect()]
        except PySparkException as exc:  # errors found while running, not planning
            raise _failed(exc, self._sql) from exc

    def df(self) -> pd.DataFrame:
        from pyspark.errors import PySparkException

        try:  # through Arrow by pyarrow: PySpark's own toPandas still passes pandas 3 a removed keyword
            return self._frame.toArrow().to_pandas()
        except PySparkException as exc:
            raise _failed(exc, self._sql) from exc


class SparkEngine:
    """Runs an assessment's row-level SQL on Spark; see the module docstring.

    Args:
        session: The Spark session.
        warehouse: Root folder or URI of the tables it writes.
        schema: The assessment's schema (a Spark database in the session's catalog).
    """

    kind = "spark"

    def __init__(self, session: SparkSession, warehouse: str, schema: str) -> None:
        self.session = session
        self.warehouse = warehouse
        self.schema = schema
        self.registered = False  # the assessment's sources and tables are in the session's catalog
        session.sql(f"CREATE DATABASE IF NOT EXISTS {_quoted(schema)}")
        session.catalog.setCurrentDatabase(schema)

    def name(self, table: str) -> str:
        """``table`` of the assessment's schema, quoted for Spark SQL."""
        return f"{_quoted(self.schema)}.{_quoted(table)}"

    # -- queries -----------------------------------------------------------------------------

    def frame(self, sql: str, params: Sequence[object] = ()) -> DataFrame:
        """A lazy Spark DataFrame of one DuckDB query."""
        from pyspark.errors import PySparkException

        try:
            text = to_spark(sql)
        except TranspileError as exc:
            raise SparkEngineError(
                NOT_TRANSPILED.format(reason=exc), context={"sql": sql}
            ) from None
        if self.session.catalog.currentDatabase() != self.schema:
            self.session.catalog.setCurrentDatabase(self.schema)
        try:
            return self.session.sql(text, args=list(params) or None)
        except PySparkException as exc:
            raise _failed(exc, text) from exc

    def execute(self, sql: str, params: Sequence[object] = ()) -> _Rows:
        """Run one DuckDB statement on Spark; read the answer with ``fetchall()`` or ``df()``."""
        return _Rows(self.frame(sql, params), sql)

    def columns(self, relation: str) -> list[tuple[str, str]]:
        """(name, Spark type) of a relation's columns."""
        return [(n, t) for n, t in self.frame(f"SELECT * FROM {relation}").dtypes]

    # -- storage -----------------------------------------------------------------------------

    def _fs(self, uri: str) -> tuple[Any, Any]:
        jvm = self.session._jvm
        path = jvm.org.apache.hadoop.fs.Path(uri)
        return path.getFileSystem(self.session._jsc.hadoopConfiguration()), path

    def location(self, table: str) -> str:
        """Where a table's day folders live."""
        return _table_path(self.warehouse, self.schema, table)

    def _register(self, name: str, path: str, options: Mapping[str, str], file_format: str) -> None:
        opts = ", ".join(
            f"{k} {exp.Literal.string(v).sql(dialect='spark')}"
            for k, v in {"path": path, **options}.items()
        )
        target = self.name(name)
        self.session.sql(f"DROP TABLE IF EXISTS {target}")
        self.session.sql(f"CREATE TABLE {target} USING {file_format} OPTIONS ({opts})")

    def expose_source(self, name: str, path: str, file_format: str) -> None:
        """Register a source's files as the table ``schema.name``."""
        from pyspark.errors import PySparkException

        options = {"header": "true", "inferSchema": "true"} if file_format == "csv" else {}
        try:
            self._register(name, path, options, file_format)
        except PySparkException as exc:
            raise SqlModelError(
                f"source {name!r} cannot be read from {path}: {str(exc).strip().splitlines()[0]}",
                context={"source": name},
            ) from exc

    def register_tables(self, names: Sequence[str]) -> None:
        """Register each written table of the assessment (those with a folder in the warehouse)."""
        for name in names:
            fs, path = self._fs(self.location(name))
            if fs.exists(path) and any(
                not s.getPath().getName().startswith(("_", ".")) for s in fs.listStatus(path)
            ):
                self._register(
                    name, self.location(name), {"recursiveFileLookup": "true"}, "parquet"
                )

    def table_columns(self, table: str) -> tuple[tuple[str, str], ...]:
        """(name, type) of a written table; empty when it has none."""
        if not self.session.catalog.tableExists(self.name(table)):
            return ()
        return tuple(self.session.table(self.name(table)).dtypes)

    def write_partition(
        self,
        table: str,
        day: DataFrame,
        *,
        whole: DataFrame | None,
        partition_column: str,
        partition_key: str,
    ) -> tuple[int, int, tuple[tuple[str, str], ...], bool]:
        """Replace one day of ``table`` with ``day``'s rows (all days from ``whole`` if the columns changed).

        Returns:
            Rows of the day, rows of the table, the columns, and whether the table was rebuilt.
        """
        from pyspark.errors import PySparkException
        from pyspark.sql import functions as F

        columns = tuple(day.dtypes)
        existing = self.table_columns(table)
        rebuilt = bool(existing) and existing != columns and whole is not None
        root = self.location(table)
        incoming = f"{root}/_incoming-{uuid.uuid4().hex}"
        fs, _ = self._fs(root)
        path = self.session._jvm.org.apache.hadoop.fs.Path
        try:
            if rebuilt:
                days = F.date_format(F.col(partition_column).cast("date"), "yyyy-MM-dd")
                whole.where(days.isNotNull()).withColumn("_day", days).write.partitionBy(
                    "_day"
                ).parquet(incoming)
                for status in fs.listStatus(path(root)):
                    if not status.getPath().getName().startswith("_incoming-"):
                        fs.delete(status.getPath(), True)
                for status in fs.listStatus(path(incoming)):
                    name = status.getPath().getName()
                    if name.startswith("_day="):
                        fs.rename(status.getPath(), path(f"{root}/{name.removeprefix('_day=')}"))
            else:
                day.write.mode("errorifexists").parquet(incoming)
                target = path(f"{root}/{partition_key}")
                fs.delete(target, True)
                if not fs.rename(path(incoming), target):
                    raise SparkEngineError(f"could not move {incoming} to {root}/{partition_key}")
        except PySparkException as exc:  # the query failed while its rows were written
            raise _failed(exc) from exc
        finally:
            fs.delete(path(incoming), True)  # hidden from readers, but not left behind
        self.register_tables([table])
        written = (
            self.session.read.parquet(f"{root}/{partition_key}").count()
            if fs.exists(path(f"{root}/{partition_key}"))
            else 0
        )
        total = self.session.table(self.name(table)).count()
        return int(written), int(total), columns, rebuilt

    def materialize(
        self, model: SqlModel, *, partition_column: str, partition_key: str
    ) -> MaterializedPartition:
        """Replace one day of a SQL model's table with the rows its query (on Spark) gives that day.

        Raises:
            SqlModelError: The model has no Spark form, Spark refuses it, or its output lacks the
                partition column (the model's file named). Nothing is changed then.
        """
        query = model.sql.strip().rstrip(";").strip()
        try:
            whole = self.frame(query)
            if partition_column not in whole.columns:
                raise SqlModelError(
                    f"the model's output has no partition column {partition_column!r} (columns: {whole.columns})",
                    context={"model": str(model.path)},
                )
            day = self.frame(
                f"SELECT * FROM ({query}) AS _model WHERE CAST(_model.{ident(partition_column)} AS DATE) = CAST(? AS DATE)",
                [partition_key],
            )
            rows, total, columns, rebuilt = self.write_partition(
                model.name,
                day,
                whole=whole,
                partition_column=partition_column,
                partition_key=partition_key,
            )
        except SparkEngineError as exc:
            raise SqlModelError(
                exc.message, context={"model": str(model.path), **exc.context}
            ) from exc
        return MaterializedPartition(
            table=f"{self.schema}.{model.name}",
            partition_rows=rows,
            total_rows=total,
            columns=columns,
            rebuilt=rebuilt,
        )

    def fingerprint(
        self, table: str, partition_column: str, partition_key: str | None = None
    ) -> dict[str, str]:
        """Content fingerprint per partition: count, sum and xor of the rows' 64-bit hashes."""
        day = f"CAST({_quoted(partition_column)} AS DATE)"
        where = f"WHERE {day} = CAST(? AS DATE)" if partition_key else ""
        rows = self.session.sql(
            f"SELECT date_format(p, 'yyyy-MM-dd'), count(*), CAST(sum(CAST(h AS DECIMAL(38, 0))) AS STRING), "
            f"CAST(bit_xor(h) AS STRING) FROM (SELECT {day} AS p, xxhash64(*) AS h FROM {self.name(table)} {where}) "
            "GROUP BY p",
            args=[partition_key] if partition_key else None,
        ).collect()
        return {
            p: hashlib.sha256(f"{n}:{h}:{x}".encode()).hexdigest()[:16]
            for p, n, h, x in rows
            if p is not None
        }


def _quoted(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect="spark")


_ENGINES: dict[tuple, SparkEngine] = {}
_REGISTERED: dict[str, SparkEngine] = {}  # schema -> the engine whose tables the catalog names


def warehouse_of(spec: Any, expand: Callable[[str], Any]) -> str:
    """The warehouse root of ``spec`` (a ``SparkEngineSpec``): a URI as given, a path expanded."""
    root = spec.warehouse if "://" in spec.warehouse else str(expand(spec.warehouse))
    return root.rstrip("/")


def _table_path(warehouse: str, schema: str, table: str) -> str:
    return f"{warehouse}/{schema}/{table}"


def table_location(spec: Any, schema: str, table: str, expand: Callable[[str], Any]) -> str:
    """Where the Spark engine keeps ``schema.table``."""
    return _table_path(warehouse_of(spec, expand), schema, table)


def engine_for(spec: Any, schema: str, expand: Callable[[str], Any]) -> SparkEngine:
    """The process's engine of one assessment's Spark settings (``spec``: a ``SparkEngineSpec``)."""
    master = os.environ.get(MASTER_ENV) or spec.master
    warehouse = warehouse_of(spec, expand)
    key = (master, tuple(sorted(spec.conf.items())), warehouse, schema)
    if key not in _ENGINES:
        _ENGINES[key] = SparkEngine(spark_session(master, spec.conf, warehouse), warehouse, schema)
    engine = _ENGINES[key]
    if _REGISTERED.get(schema) is not engine:
        # the catalog's schema.* names point at another engine's warehouse: register again
        engine.registered = False
        _REGISTERED[schema] = engine
    return engine

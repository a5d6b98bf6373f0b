"""DuckDB SQL to Spark SQL with sqlglot, refusing what would not run, or run differently, on Spark.

The SQL models and the package's aggregate queries are written once, in DuckDB's dialect. sqlglot
rewrites them for Spark; a few DuckDB forms it passes through unchanged or drops a clause of are refused
here with the reason, so a model that cannot run on Spark fails when definitions load rather than at
night.
"""

from __future__ import annotations

import functools

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError

__all__ = ["TranspileError", "to_spark"]


class TranspileError(ValueError):
    """A DuckDB query that has no faithful Spark form; the message is the reason."""


@functools.cache
def _spark_functions() -> frozenset[str]:
    """Names of Spark SQL's built-in functions, as PySpark exposes them (no JVM needed)."""
    from pyspark.sql import functions

    return frozenset(name.lower() for name in dir(functions) if not name.startswith("_"))


def _spark_forms(node: exp.Expression) -> exp.Expression:
    """Rewrite DuckDB forms that sqlglot carries over verbatim into their Spark equivalents."""
    if isinstance(node, exp.PercentileCont) and isinstance(node.expression, exp.Array):
        # quantile_cont(x, [p1, p2]) -> percentile(x, array(p1, p2)): exact percentiles in both
        return exp.Anonymous(this="percentile", expressions=[node.this, node.expression])
    if isinstance(node, exp.Literal) and not node.is_string and not node.this.isdigit():
        # 1.5 is a DECIMAL in both, but Spark rounds a DECIMAL quotient to 6 places where DuckDB
        # divides in DOUBLE: as a DOUBLE the literal gives DuckDB's answer
        return exp.cast(node, "DOUBLE")
    lookup = _lookup(node)
    if lookup is not None:
        # [w1, w2][list_position([k1, k2], x)] -> CASE x WHEN k1 THEN w1 WHEN k2 THEN w2 END: Spark's
        # array_position gives 0, not NULL, for a missing value, and element_at(a, 0) fails
        value, keys, weights = lookup  # new nodes are not visited: rewrite their parts here
        return exp.Case(
            this=value.transform(_spark_forms),
            ifs=[
                exp.If(this=k.transform(_spark_forms), true=w.transform(_spark_forms))
                for k, w in zip(keys, weights, strict=True)
            ],
        )
    if isinstance(node, exp.Anonymous) and node.name.lower() == "hash":
        # DuckDB's hash is 64-bit; Spark's is 32-bit murmur3, so xxhash64 keeps collisions as rare
        return exp.Anonymous(this="xxhash64", expressions=node.expressions)
    return node


def _lookup(
    node: exp.Expression,
) -> tuple[exp.Expression, list[exp.Expression], list[exp.Expression]] | None:
    """``(x, keys, values)`` of ``[values][list_position([keys], x)]`` with literal lists of one length."""
    if not isinstance(node, exp.Bracket) or not isinstance(node.this, exp.Array):
        return None
    index = node.expressions[0] if len(node.expressions) == 1 else None
    if not isinstance(index, exp.Anonymous) or index.name.lower() != "list_position":
        return None
    if len(index.expressions) != 2 or not isinstance(index.expressions[0], exp.Array):
        return None
    keys, values = index.expressions[0].expressions, node.this.expressions
    return (index.expressions[1], keys, values) if len(keys) == len(values) else None


def _refusal(tree: exp.Expression) -> str | None:
    for node in tree.walk():
        if isinstance(node, exp.Star) and any(
            node.args.get(k) for k in ("replace", "except_", "rename")
        ):
            return "Spark SQL has no SELECT * REPLACE/EXCLUDE/RENAME: name the columns"
        if isinstance(node, exp.Columns):
            return "Spark SQL has no COLUMNS(...) expression: name the columns"
        if (
            isinstance(node, exp.Join)
            and "ASOF"
            in str(node.args.get("kind") or "").upper() + str(node.args.get("method") or "").upper()
        ):
            return "Spark SQL has no ASOF JOIN"
        if isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Order):
            return "Spark's collect_list does not keep an ORDER BY inside the aggregate"
        if isinstance(node, exp.Pivot) and node.parent is None:
            return "Spark SQL has no PIVOT statement (use PIVOT in a FROM clause)"
        if isinstance(node, exp.Anonymous) and node.name.lower() not in _spark_functions():
            return (
                f"{node.name}() is not a Spark SQL function and sqlglot knows no Spark form of it"
            )
    return None


@functools.lru_cache(maxsize=4096)
def to_spark(sql: str) -> str:
    """The Spark SQL form of one DuckDB statement.

    Raises:
        TranspileError: sqlglot cannot parse or translate it, or it uses a DuckDB form Spark lacks.
    """
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except ParseError as exc:
        raise TranspileError(f"sqlglot cannot parse it as DuckDB SQL: {exc}") from None
    tree = tree.transform(_spark_forms)
    reason = _refusal(tree)
    if reason:
        raise TranspileError(reason)
    try:
        return tree.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        raise TranspileError(f"sqlglot cannot write it for Spark: {exc}") from None

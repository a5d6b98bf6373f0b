"""Discovery and static analysis of ``dbt_like_sql`` models with sqlglot.

A model is one ``SELECT`` in a ``.sql`` file; its file stem is its table and asset name, its
subfolders (``staging/``, ``marts/``) its asset key prefix. What it reads, the columns it produces and
where each column comes from are found by parsing it; no templating is involved.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.lineage import lineage

from impact_assets.errors import SqlModelError

__all__ = ["ColumnDep", "SqlModel", "SqlProject", "discover_models"]

DIALECT = "duckdb"

NOT_ONE_STATEMENT = "a SQL model must hold exactly one statement; found {count}"
NOT_A_SELECT = "a SQL model must be a SELECT query; found {kind}"
SYNTAX_ERROR = "SQL syntax error: {description}"
DUPLICATE_NAME = "two SQL models are named {name!r}: {first} and {second}"
NO_MODELS = "no SQL models match {patterns} under {root}"
UNKNOWN_TABLE = "reads table {table!r}, which is neither a SQL model nor a source of this assessment (known: {known})"
CYCLE = "SQL models depend on each other in a cycle: {cycle}"
RESERVED_NAME = "the name {name!r} is reserved for a table the assessment writes itself"


@dataclass(frozen=True)
class ColumnDep:
    """One upstream column an output column is computed from."""

    table: str
    column: str


@dataclass(frozen=True)
class SqlModel:
    """One parsed SQL model.

    Attributes:
        name: Table and asset name (the file stem).
        path: The ``.sql`` file.
        prefix: Subfolders between the SQL root and the file, e.g. ``("staging",)``.
        sql: The query text, unchanged.
        reads: Tables the query reads (CTE names excluded).
    """

    name: str
    path: Path
    prefix: tuple[str, ...]
    sql: str
    reads: frozenset[str]
    expression: exp.Query = field(repr=False, compare=False)


def _parse(path: Path, text: str) -> exp.Query:
    try:
        statements = [s for s in sqlglot.parse(text, read=DIALECT) if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        raise SqlModelError(
            SYNTAX_ERROR.format(description=first.get("description", str(exc))),
            context={"model": str(path), "line": first.get("line"), "column": first.get("col")},
        ) from None
    if len(statements) != 1:
        raise SqlModelError(
            NOT_ONE_STATEMENT.format(count=len(statements)), context={"model": str(path)}
        )
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        raise SqlModelError(
            NOT_A_SELECT.format(kind=statement.key.upper()), context={"model": str(path)}
        )
    return statement


def _tables_read(expression: exp.Query) -> frozenset[str]:
    ctes = {cte.alias_or_name for cte in expression.find_all(exp.CTE)}
    return frozenset(
        t.name for t in expression.find_all(exp.Table) if t.name and t.name not in ctes
    )


def discover_models(root: Path, patterns: Iterable[str]) -> list[SqlModel]:
    """Find and parse the models under ``root`` matching ``patterns`` (globs, e.g. ``staging/*.sql``)."""
    root = Path(root)
    patterns = tuple(patterns)
    files = sorted(
        {
            p
            for pattern in patterns
            for p in root.glob(pattern)
            if p.is_file() and p.suffix == ".sql"
        }
    )
    if not files:
        raise SqlModelError(NO_MODELS.format(patterns=list(patterns), root=root))
    models: dict[str, SqlModel] = {}
    for path in files:
        text = path.read_text(encoding="utf-8")
        expression = _parse(path, text)
        name = path.stem
        if name in models:
            raise SqlModelError(
                DUPLICATE_NAME.format(name=name, first=models[name].path, second=path)
            )
        models[name] = SqlModel(
            name=name,
            path=path,
            prefix=path.parent.relative_to(root).parts,
            sql=text,
            reads=_tables_read(expression),
            expression=expression,
        )
    return list(models.values())


class SqlProject:
    """The SQL models of one assessment, resolved against the tables they may read.

    Args:
        models: Parsed models.
        external: Tables that are not SQL models but exist when the models run (sources, the
            predictions table), with their columns where known (``None``: unknown).
        reserved: Names models may not take.

    Raises:
        SqlModelError: A model reads an unknown table, two models form a cycle, or a name is reserved.
    """

    def __init__(
        self,
        models: Iterable[SqlModel],
        *,
        external: Mapping[str, Mapping[str, str] | None],
        reserved: Iterable[str] = (),
    ) -> None:
        self.models = {m.name: m for m in models}
        self.external = dict(external)
        for name in reserved:
            if name in self.models:
                raise SqlModelError(
                    RESERVED_NAME.format(name=name), context={"model": str(self.models[name].path)}
                )
        known = sorted({*self.models, *self.external})
        for model in self.models.values():
            for table in sorted(model.reads):
                if table not in self.models and table not in self.external:
                    raise SqlModelError(
                        UNKNOWN_TABLE.format(table=table, known=known),
                        context={"model": str(model.path)},
                    )
        sorter = graphlib.TopologicalSorter(
            {m.name: {t for t in m.reads if t in self.models} for m in self.models.values()}
        )
        try:
            self.order: tuple[str, ...] = tuple(sorter.static_order())
        except graphlib.CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            raise SqlModelError(
                CYCLE.format(cycle=cycle), context={"model": str(self.models[exc.args[1][0]].path)}
            ) from None
        self.columns: dict[str, tuple[str, ...] | None] = {}
        self.column_lineage: dict[str, dict[str, tuple[ColumnDep, ...]] | None] = {}
        for name in self.order:
            self._analyse(self.models[name])

    def _schema_of(self, table: str) -> Mapping[str, str] | None:
        if table in self.models:
            cols = self.columns.get(table)
            return None if cols is None else dict.fromkeys(cols, "UNKNOWN")
        return self.external.get(table)

    def _analyse(self, model: SqlModel) -> None:
        """Output columns and their upstream columns, when the upstream schemas make them knowable."""
        schema = {t: dict(s) for t in model.reads if (s := self._schema_of(t)) is not None}
        stars = any(
            isinstance(s, exp.Star) or (isinstance(s, exp.Column) and isinstance(s.this, exp.Star))
            for s in model.expression.selects
        )
        if stars and len(schema) < len(model.reads):
            self.columns[model.name] = None
            self.column_lineage[model.name] = None
            return
        try:
            nodes = lineage(None, model.expression, schema=schema, dialect=DIALECT)
        except SqlglotError:
            self.columns[model.name] = None
            self.column_lineage[model.name] = None
            return
        # sqlglot folds every identifier to lower case (DuckDB compares names case-insensitively);
        # the names DuckDB actually gives the columns keep the spelling of the SELECT or upstream.
        spelled = {c.lower(): c for columns in schema.values() for c in columns}
        spelled.update({c.lower(): c for c in model.expression.named_selects})
        deps: dict[str, tuple[ColumnDep, ...]] = {}
        for column, node in nodes.items():
            leaves = {
                ColumnDep(
                    table=leaf.source.name,
                    column=_spelling(leaf.name.split(".")[-1], schema.get(leaf.source.name, {})),
                )
                for leaf in node.walk()
                if not leaf.downstream and isinstance(leaf.source, exp.Table) and leaf.source.name
            }
            deps[spelled.get(column, column)] = tuple(
                sorted(leaves, key=lambda d: (d.table, d.column))
            )
        self.columns[model.name] = tuple(deps)
        self.column_lineage[model.name] = deps

    def upstream_models(self, name: str) -> list[str]:
        """SQL models that ``name`` reads."""
        return sorted(t for t in self.models[name].reads if t in self.models)


def _spelling(column: str, columns: Mapping[str, str]) -> str:
    """``column`` as spelled in ``columns`` (compared case-insensitively), else as given."""
    return next((c for c in columns if c.lower() == column.lower()), column)

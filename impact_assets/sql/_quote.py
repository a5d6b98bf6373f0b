"""Quoting of identifiers and literals for SQL text the package builds.

Values always travel as parameters. Identifiers (schemas, tables, columns named in a spec) cannot, so
they are quoted here and only here; a name that cannot be quoted safely is refused.
"""

from __future__ import annotations

from impact_assets.errors import SqlModelError

__all__ = ["ident", "literal", "qualified"]

UNSAFE_IDENTIFIER = (
    "identifier {name!r} cannot be used in SQL: it is empty or contains a NUL character"
)


def ident(name: str) -> str:
    """Quote one identifier for DuckDB: ``a"b`` becomes ``"a""b"``."""
    if not name or "\x00" in name:
        raise SqlModelError(UNSAFE_IDENTIFIER.format(name=name))
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    """Quoted ``schema.table``."""
    return f"{ident(schema)}.{ident(table)}"


def literal(text: str) -> str:
    """Quote a string literal, for the few statements that take no parameters (``CREATE VIEW``)."""
    if "\x00" in text:
        raise SqlModelError(UNSAFE_IDENTIFIER.format(name=text))
    return "'" + text.replace("'", "''") + "'"

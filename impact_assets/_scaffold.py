"""``impact-assets init NAME [--from-csv FILE]``: a runnable project with a commented assessment.

The project's files (``workspace.yaml``, ``definitions.py``, a README, ``.gitignore``) are written
where missing; the assessment's YAML and SQL never overwrite anything. Without a CSV the data is a
small sample with a known answer, so ``assess`` and ``ui`` run at once; with one, the columns are
read by DuckDB and each binding is chosen from the column's name, type and values, and said in a
comment next to it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from impact_assets.errors import SpecError
from impact_assets.settings import ProjectPaths

__all__ = ["SAMPLE_DAYS", "Scaffold", "infer_columns", "scaffold"]

NAME = re.compile(r"^[a-z][a-z0-9_]*$")

#: Days of the sample written when no CSV is given.
SAMPLE_DAYS = 14
SAMPLE_ROWS = 200

#: Sensitive features are text columns with this many distinct values at most.
MAX_GROUPS = 20

WORKSPACE = """\
load_from:
  - python_file:
      relative_path: definitions.py
      location_name: impact_assets
"""

DEFINITIONS = '''\
"""Dagster entry point: every assessment in ./assessments (or $IMPACT_ASSETS_ASSESSMENTS_DIR)."""

from pathlib import Path

from impact_assets import ProjectPaths, build_definitions

defs = build_definitions(ProjectPaths.from_env(default_project_dir=Path(__file__).parent))
'''

GITIGNORE = ".impact/\n"

README = """\
# {title}

An impact assessment of `{name}` with impact-assets:
every day of decisions becomes a partition whose fairness, quality and register entries are
assessed and kept in `.impact/impact_assets.duckdb`.

## Run it

```sh
impact-assets validate                                   # the spec and its SQL, nothing run
impact-assets assess --assessment {name} --from {first} --to {last}
impact-assets ui                                         # Dagster's UI on http://127.0.0.1:3000
```

`assess` prints one line per day and the OpenLineage delivery; the register of each day is in the
table `impact.register_entries` and in the report under `.impact/reports/{name}/`.

## What is here

| Path | What it holds |
|---|---|
| `assessments/{name}.yaml` | the assessment: intended use, the data, the bindings, the register; comments say what to change first |
| `dbt_like_sql/{name}/{name}_scored.sql` | the SQL model that gives one scored row per decision |
| `{data}` | {data_note} |
| `workspace.yaml`, `definitions.py` | what `impact-assets ui` and `dagster` load |
| `.impact/` | everything written: the DuckDB results, reports, lineage, the local Dagster instance |

## Change first

1. `intended_use`, `limitations`, `owners` and `stakeholders`: they open the report.
2. The bindings: check that each column means what its comment says.
3. The register: the sample entry compares decision rates between groups; add the entries that
   must hold for this model (see the spec reference of impact-assets).
"""

SPEC = """\
# Impact assessment of {name}. What each key means: `impact-assets schema --markdown`; editors get
# completion from `impact-assets schema`. Check the file with `impact-assets validate`.
#
# Change first: intended_use, limitations, owners and stakeholders (they open the report), then
# check the bindings below (each says which column it was read from), then the register.
id: {name}
title: {title}
intended_use: >-
  What the model decides, for whom, and what it must not be used for. Written for the people
  affected: it opens the impact report.
limitations:
  - Where the training data or the model fall short (time, place, who is missing).
owners: [owner@example.org]          # who answers for the assessment (e-mail addresses)
stakeholders:                        # who the model's decisions touch
  - {{id: applicants, description: People the model decides about.}}
  - {{id: operator, description: The organisation that runs the model.}}
model:
  name: {name}_model
  positive_label: 1                  # the favourable outcome (approved, admitted, treated...)
sources:                             # raw files, read by the SQL models under the source's name
  {name}_decisions:
{path_line}
    format: csv
{day_line}
{loaded_at}sql:
  paths: ["{name}/*.sql"]            # this assessment's models in the SQL folder
partitions:
  start_date: "{start}"           # the data's first day
bindings:                            # which table holds the scored rows, and what its columns mean
  scored_table: {name}_scored
{id_line}
  partition_column: day
{label_line}
{prediction_line}
{score}  sensitive_features:                # the groups compared; an unexpected value fails a quality check
{features}  min_group_size: 30                 # smaller groups are reported as suppressed, never as pass
register:                            # what must hold, measured every run
  - id: decision_parity
    outcome: Every group of {feature} receives favourable decisions at a comparable rate.
    stakeholder: applicants
    impact: harm
    measure: {{source: disparity, metric: demographic_parity, feature_set: {feature}, method: ratio}}
    thresholds: {{direction: higher_is_better, warn: 0.9, breach: 0.8}}   # the four-fifths rule
    owner: owner@example.org
    action: review                   # on breach: notify, review, block_release or rollback
"""

SQL = """\
-- The scored rows of {name}: one row per decision, with the columns the bindings name.
-- Reads the source `{name}_decisions` (the files of sources.{name}_decisions.path).
SELECT
{select}
FROM {name}_decisions
"""


@dataclass(frozen=True)
class Column:
    """A column of the scored table: its name, the SQL that gives it from the data, and why."""

    alias: str
    expression: str
    note: str
    values: tuple[str, ...] = ()  # a sensitive feature's groups


@dataclass(frozen=True)
class Columns:
    """What the columns of a CSV mean to the assessment, in the scored table's order."""

    id: Column
    day: Column
    features: tuple[Column, ...]
    label: Column
    prediction: Column
    score: Column | None
    day_source: str
    loaded_at: str | None
    first_day: dt.date
    last_day: dt.date

    def selected(self) -> list[Column]:
        return [self.id, self.day, *self.features, self.label, self.prediction] + (
            [self.score] if self.score else []
        )


@dataclass(frozen=True)
class Scaffold:
    """What ``init`` wrote, and the days its data covers."""

    written: list[Path]
    first_day: dt.date
    last_day: dt.date


def sample_start(today: dt.date | None = None) -> dt.date:
    """The sample's first day: its last one is today."""
    return (today or dt.date.today()) - dt.timedelta(days=SAMPLE_DAYS - 1)


def _snake(name: str) -> str:
    text = re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")
    return text if re.match(r"^[a-z]", text) else f"c_{text}"


def _named(columns: list[str], *patterns: str) -> str | None:
    for pattern in patterns:
        for column in columns:
            if re.search(pattern, column.lower()):
                return column
    return None


def infer_columns(csv: Path) -> Columns:
    """Read ``csv`` with DuckDB and choose the id, day, label, prediction, score and groups.

    Raises:
        SpecError: when the file cannot be read, or a binding has no column that can hold it.
    """
    import duckdb

    with duckdb.connect() as conn:
        try:
            literal = "'" + str(csv).replace("'", "''") + "'"
            conn.execute(
                f"CREATE TABLE data AS SELECT * FROM read_csv({literal}, auto_detect = true)"
            )
            described = conn.execute("DESCRIBE data").fetchall()
        except duckdb.Error as exc:
            raise SpecError(
                f"cannot read {csv} as CSV: {exc}", context={"file": str(csv)}
            ) from None
        types = {name: kind.upper() for name, kind, *_ in described}
        names = list(types)

        # per column, in one scan: rows, distinct values, min, max, the first distinct values
        aggregates = ", ".join(
            f"{{'rows': count(*), 'distinct': count(DISTINCT {q}), 'low': min({q}), 'high': max({q}), "
            f"'values': list_slice(list_sort(list(DISTINCT {q})), 1, {MAX_GROUPS + 1})}}"
            for q in map(_quoted, names)
        )
        facts = dict(
            zip(names, conn.execute(f"SELECT {aggregates} FROM data").fetchall()[0], strict=True)
        )

        def missing(role: str, wanted: str) -> SpecError:
            seen = ", ".join(f"{n} ({types[n]})" for n in names)
            return SpecError(
                f"{csv}: no column can be the {role} ({wanted}); columns: {seen}. Rename the "
                "column or add it, or write the spec by hand from `impact-assets init NAME`",
                context={"file": str(csv), "binding": role},
            )

        temporal = [n for n in names if types[n].startswith(("DATE", "TIMESTAMP"))]
        loaded_at = _named(temporal, r"load", r"ingest", r"extract", r"arriv")
        days = [n for n in temporal if n != loaded_at]
        day = _named(days, r"^day$", r"^date$", r"decision", r"date", r"day") or (
            days[0] if days else None
        )
        if day is None:
            raise missing("day of each decision", "a DATE or TIMESTAMP column")

        def binary(n: str) -> bool:
            values = facts[n]["values"]
            return 0 < len(values) <= 2 and all(
                isinstance(v, (int, float, bool)) and float(v) in (0.0, 1.0) for v in values
            )

        binaries = [n for n in names if binary(n) and n not in (day, loaded_at)]
        label = _named(
            binaries, r"outcome", r"label", r"target", r"actual", r"^y$", r"repaid", r"default"
        )
        prediction = _named(
            [n for n in binaries if n != label],
            r"decision",
            r"predict",
            r"pred",
            r"approv",
            r"^y_hat$",
        )
        rest = [n for n in binaries if n not in (label, prediction)]
        if label is None and rest:
            label = rest.pop(0)
        if label is None:
            raise missing("label (what really happened)", "a column of 0 and 1 such as outcome")
        numeric = [
            n
            for n in names
            if types[n] in ("DOUBLE", "FLOAT", "REAL") or types[n].startswith("DECIMAL")
        ]
        scores = [
            n
            for n in numeric
            if n not in binaries
            and facts[n]["low"] is not None
            and 0 <= facts[n]["low"] <= facts[n]["high"] <= 1
        ]
        score = _named(scores, r"score", r"prob", r"proba", r"risk") or (
            scores[0] if scores else None
        )
        if prediction is None and score is None:
            raise missing(
                "prediction (what the model decided)",
                "a column of 0 and 1 such as decision, or a score in [0, 1]",
            )
        used = {day, loaded_at, label, prediction, score}
        identifiers = [
            n for n in names if n not in used and facts[n]["distinct"] == facts[n]["rows"]
        ]
        ident = _named(identifiers, r"(^|_)id$", r"^id", r"key", r"number") or (
            identifiers[0] if identifiers else None
        )
        if ident is None:
            raise missing("id of each decision", "a column whose values are all different")
        used.add(ident)
        features = [
            n
            for n in names
            if n not in used
            and (types[n] in ("VARCHAR", "BOOLEAN") or types[n].startswith("ENUM"))
            and 2 <= facts[n]["distinct"] <= MAX_GROUPS
        ]
        if not features:
            raise missing("sensitive feature", f"a text column with 2 to {MAX_GROUPS} values")

    def col(name: str, note: str, cast: str | None = None) -> Column:
        expression = f"CAST({_quoted(name)} AS {cast})" if cast else _quoted(name)
        return Column(_snake(name), expression, f"column {name!r}: {note}")

    return Columns(
        id=col(ident, "every value different"),
        day=Column(
            "day", f"CAST({_quoted(day)} AS DATE)", f"column {day!r}: the day of the decision"
        ),
        features=tuple(
            Column(
                _snake(n),
                _quoted(n),
                f"column {n!r}: a sensitive feature",
                tuple(map(str, facts[n]["values"])),
            )
            for n in features
        ),
        label=col(label, "what really happened, 1 = favourable", "INTEGER"),
        prediction=(
            col(prediction, "what the model decided, 1 = favourable", "INTEGER")
            if prediction
            else Column(
                "decision",
                f"CAST({_quoted(score)} >= 0.5 AS INTEGER)",
                f"column {score!r} >= 0.5: the decision rule, change it to the model's",
            )
        ),
        score=col(score, "the model's score in [0, 1]") if score else None,
        day_source=day,
        loaded_at=loaded_at,
        first_day=_as_date(facts[day]["low"]),
        last_day=_as_date(facts[day]["high"]),
    )


def _as_date(value: dt.date | dt.datetime) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _sample(folder: Path, start: dt.date) -> Path:
    """200 decisions a day for ``SAMPLE_DAYS`` days.

    Group a (even ids) scores 0, .2, .4, .6, .8 and gets 2 of 5 approved, group b 3 of 5: a
    demographic-parity ratio of 2/3 every day, a breach of the sample's register entry.
    """
    lines = ["case_id,day,group,outcome,score,loaded_at"]
    for d in range(SAMPLE_DAYS):
        day = start + dt.timedelta(days=d)
        lines += [
            f"{d * SAMPLE_ROWS + i},{day},{'ab'[i % 2]},{int(i % 3 > 0)},{(i % 10) / 10:.1f},{day} 23:00:00"
            for i in range(SAMPLE_ROWS)
        ]
    path = folder / "sample.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _select(columns: Columns) -> str:
    selected = columns.selected()
    return "\n".join(
        f"    {c.expression} AS {_quoted(c.alias)}{',' if i < len(selected) - 1 else ''}  -- {c.note}"
        for i, c in enumerate(selected)
    )


def _commented(text: str, comment: str) -> str:
    return f"{text.ljust(36)} # {comment}"


def _spec(name: str, columns: Columns, data_glob: str) -> str:
    features = "".join(
        f"    - {{name: {f.alias}, values: [{', '.join(_yaml_text(v) for v in f.values)}]}}\n"
        for f in columns.features
    )
    loaded_at = columns.loaded_at
    return SPEC.format(
        name=name,
        title=name.replace("_", " ").capitalize(),
        path_line=_commented(f"    path: {data_glob}", "relative to the project"),
        day_line=_commented(
            f"    partition_column: {_yaml_text(columns.day_source)}",
            "one partition per day of this column",
        ),
        loaded_at=(
            _commented(f"    loaded_at_column: {_yaml_text(loaded_at)}", "when each row arrived")
            + "\n"
            if loaded_at
            else ""
        ),
        start=columns.first_day.isoformat(),
        id_line=_commented(f"  id_column: {columns.id.alias}", columns.id.note),
        label_line=_commented(f"  label: {columns.label.alias}", columns.label.note),
        prediction_line=_commented(
            f"  prediction: {columns.prediction.alias}", columns.prediction.note
        ),
        score=(
            _commented(f"  score: {columns.score.alias}", columns.score.note) + "\n"
            if columns.score
            else ""
        ),
        features=features,
        feature=columns.features[0].alias,
    )


def _yaml_text(value: str) -> str:
    return (
        value
        if re.match(r"^[A-Za-z_][A-Za-z0-9_ .-]*$", value)
        and value.lower() not in ("yes", "no", "true", "false", "on", "off", "null", "y", "n")
        else json.dumps(value)
    )


def scaffold(
    paths: ProjectPaths,
    name: str,
    *,
    from_csv: Path | None = None,
    start: dt.date | None = None,
    project_files: bool = True,
) -> Scaffold:
    """Write a runnable project for assessment ``name``; never overwrite an existing file.

    Args:
        paths: The project's folders.
        name: The assessment's id, also its file and SQL folder names.
        from_csv: Scored decisions to assess (copied into ``data/<name>/``); without it a sample.
        start: The sample's first day (default: so that its last day is today).
        project_files: Also write the project's workspace, definitions, README and .gitignore.
    """
    if not NAME.match(name):
        raise SpecError(
            f"assessment name {name!r} must start with a lowercase letter and hold only a-z, 0-9 and _",
            context={"name": name},
        )
    spec = paths.assessments_dir / f"{name}.yaml"
    sql = paths.sql_dir / name / f"{name}_scored.sql"
    data = paths.project_dir / "data" / name
    existing = [str(p) for p in (spec, sql, data) if p.exists()]
    if existing:
        raise SpecError(
            f"not overwriting {', '.join(existing)}; choose another name or remove them",
            context={"name": name},
        )
    if from_csv is not None and not from_csv.is_file():
        raise SpecError(f"no CSV file at {from_csv}", context={"file": str(from_csv)})
    columns = infer_columns(from_csv) if from_csv is not None else None  # before writing anything
    written: list[Path] = []
    data.mkdir(parents=True)
    if columns is None:
        csv = _sample(data, start or sample_start())
        columns = infer_columns(csv)
        note = f"a sample of {SAMPLE_ROWS} decisions a day; replace it with the model's scored rows"
    else:
        csv = data / from_csv.name
        shutil.copyfile(from_csv, csv)
        note = f"the scored rows, copied from {from_csv}"
    written.append(csv)
    spec.parent.mkdir(parents=True, exist_ok=True)
    sql.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(_spec(name, columns, f"data/{name}/*.csv"), encoding="utf-8")
    sql.write_text(SQL.format(name=name, select=_select(columns)), encoding="utf-8")
    written += [spec, sql]
    files = {
        "workspace.yaml": WORKSPACE,
        "definitions.py": DEFINITIONS,
        ".gitignore": GITIGNORE,
        "README.md": README.format(
            name=name,
            title=name.replace("_", " ").capitalize(),
            first=columns.first_day,
            last=columns.last_day,
            data=f"data/{name}/",
            data_note=note,
        ),
    }
    for file, text in files.items() if project_files else ():
        target = paths.project_dir / file
        if not target.exists():
            target.write_text(text, encoding="utf-8")
            written.append(target)
    return Scaffold(written, columns.first_day, columns.last_day)

"""``impact-assets init NAME``: a new assessment's YAML and SQL, commented, valid as written."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from impact_assets.errors import SpecError
from impact_assets.settings import ProjectPaths

__all__ = ["first_of_year", "scaffold"]

SPEC = """\
# Impact assessment of {name}. Every key is explained in the README ("Assessment spec"); the JSON
# Schema (`impact-assets schema`) gives editors completion. Check it with `impact-assets validate`.
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
  # registry: ...                    # score with a model registry instead; see the README
sources:                             # raw files, read by the SQL models under the source's name
  {name}_decisions:
    path: data/{name}/*.csv          # relative to the project, or {{state_dir}}/...
    format: csv
    partition_column: day
    loaded_at_column: loaded_at      # when each row arrived, for the freshness check
sql:
  paths: ["{name}/*.sql"]            # this assessment's models in the SQL folder
partitions:
  start_date: "{start}"
bindings:                            # which table holds the scored rows, and what its columns mean
  scored_table: {name}_scored
  id_column: case_id
  partition_column: day
  label: outcome                     # what really happened (1 = favourable)
  prediction: decision               # what the model decided (1 = favourable)
  score: score                       # the model's score in [0, 1], if there is one
  sensitive_features:
    - {{name: group, values: [a, b]}}  # every value, so an unexpected one fails a quality check
  min_group_size: 30                 # smaller groups are reported as suppressed, never as pass
register:                            # what must hold, measured every run
  - id: decision_parity
    outcome: Both groups receive favourable decisions at comparable rates.
    stakeholder: applicants
    impact: harm
    measure: {{source: disparity, metric: demographic_parity, feature_set: group, method: ratio}}
    thresholds: {{direction: higher_is_better, warn: 0.9, breach: 0.8}}
    owner: owner@example.org
    action: review                   # on breach: notify, review, block_release or rollback
"""

SQL = """\
-- The scored rows of {name}: one row per case and day, with the columns the bindings name.
-- Reads the source `{name}_decisions` (the files in sources.{name}_decisions.path).
SELECT
    case_id,
    CAST(day AS DATE) AS day,
    "group",
    outcome,
    CAST(score >= 0.5 AS INTEGER) AS decision,  -- the decision rule of the model
    score
FROM {name}_decisions
"""


def first_of_year() -> str:
    """A scaffold's first partition: the first day of this year."""
    return dt.date.today().replace(month=1, day=1).isoformat()


NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def scaffold(paths: ProjectPaths, name: str, *, start: str) -> list[Path]:
    """Write ``<assessments>/<name>.yaml`` and ``<sql>/<name>/<name>_scored.sql``; never overwrite."""
    if not NAME.match(name):
        raise SpecError(
            f"assessment name {name!r} must start with a lowercase letter and hold only a-z, 0-9 and _",
            context={"name": name},
        )
    spec = paths.assessments_dir / f"{name}.yaml"
    sql = paths.sql_dir / name / f"{name}_scored.sql"
    existing = [str(p) for p in (spec, sql) if p.exists()]
    if existing:
        raise SpecError(
            f"not overwriting {', '.join(existing)}; choose another name or remove them",
            context={"name": name},
        )
    title = name.replace("_", " ").capitalize()
    spec.parent.mkdir(parents=True, exist_ok=True)
    sql.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(SPEC.format(name=name, title=title, start=start), encoding="utf-8")
    sql.write_text(SQL.format(name=name), encoding="utf-8")
    return [spec, sql]

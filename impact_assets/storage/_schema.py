"""The ``impact`` schema: the DuckDB tables other tools read, created by versioned migrations.

Table names and key columns are a public interface (see the README's "DuckDB contract"). Every
change is a new migration appended to :data:`MIGRATIONS`; applied ones are never edited.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MIGRATIONS", "SCHEMA", "Migration"]

SCHEMA = "impact"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


_RESULT_KEYS = """
    run_id          VARCHAR NOT NULL,
    assessment_id   VARCHAR NOT NULL,
    partition_key   VARCHAR NOT NULL,
    model_version   VARCHAR NOT NULL,
    data_version    VARCHAR NOT NULL,"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runs, group metrics, disparities and register snapshots",
        (
            f"""CREATE TABLE {SCHEMA}.runs (
    run_id          VARCHAR NOT NULL,
    assessment_id   VARCHAR NOT NULL,
    partition_key   VARCHAR NOT NULL,
    model_version   VARCHAR NOT NULL,
    data_version    VARCHAR NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ,
    status          VARCHAR NOT NULL CHECK (status IN ('started', 'completed', 'failed')),
    PRIMARY KEY (run_id, assessment_id, partition_key)
)""",
            f"""CREATE TABLE {SCHEMA}.group_metrics ({_RESULT_KEYS}
    feature_set     VARCHAR NOT NULL,
    group_key       VARCHAR NOT NULL,
    metric          VARCHAR NOT NULL,
    value           DOUBLE,
    ci_low          DOUBLE,
    ci_high         DOUBLE,
    n               BIGINT NOT NULL,
    suppressed      BOOLEAN NOT NULL,
    reason          VARCHAR,
    computed_at     TIMESTAMPTZ NOT NULL
)""",
            f"""CREATE TABLE {SCHEMA}.disparities ({_RESULT_KEYS}
    feature_set     VARCHAR NOT NULL,
    metric          VARCHAR NOT NULL,
    method          VARCHAR NOT NULL CHECK (method IN ('difference', 'ratio')),
    relative_to     VARCHAR NOT NULL,
    value           DOUBLE,
    ci_low          DOUBLE,
    ci_high         DOUBLE,
    n               BIGINT NOT NULL,
    groups_compared INTEGER NOT NULL,
    groups_suppressed INTEGER NOT NULL,
    reason          VARCHAR,
    computed_at     TIMESTAMPTZ NOT NULL
)""",
            f"""CREATE TABLE {SCHEMA}.register_snapshots (
    snapshot_id     VARCHAR PRIMARY KEY,
    assessment_id   VARCHAR NOT NULL,
    partition_key   VARCHAR NOT NULL,
    run_id          VARCHAR NOT NULL,
    model_version   VARCHAR NOT NULL,
    data_version    VARCHAR NOT NULL,
    taken_at        TIMESTAMPTZ NOT NULL,
    snapshot_version INTEGER NOT NULL,
    UNIQUE (assessment_id, partition_key, snapshot_version)
)""",
            f"""CREATE TABLE {SCHEMA}.register_entries (
    snapshot_id     VARCHAR NOT NULL,
    assessment_id   VARCHAR NOT NULL,
    entry_id        VARCHAR NOT NULL,
    outcome         VARCHAR NOT NULL,
    stakeholder     VARCHAR NOT NULL,
    impact          VARCHAR NOT NULL,
    metric_ref      VARCHAR NOT NULL,
    value           DOUBLE,
    ci_low          DOUBLE,
    ci_high         DOUBLE,
    n               BIGINT,
    direction       VARCHAR NOT NULL,
    threshold_warn  DOUBLE,
    threshold_breach DOUBLE NOT NULL,
    status          VARCHAR NOT NULL CHECK (status IN ('pass', 'warn', 'breach', 'insufficient_data', 'suppressed')),
    reason          VARCHAR NOT NULL,
    owner           VARCHAR NOT NULL,
    action          VARCHAR NOT NULL,
    frameworks      VARCHAR[] NOT NULL,
    PRIMARY KEY (snapshot_id, entry_id)
)""",
        ),
    ),
    Migration(
        2,
        "how each result was computed (bins, exact AUC, bootstrap settings)",
        (
            f"ALTER TABLE {SCHEMA}.group_metrics ADD COLUMN detail VARCHAR",
            f"ALTER TABLE {SCHEMA}.disparities ADD COLUMN detail VARCHAR",
        ),
    ),
    Migration(
        3,
        "data-quality results",
        (
            f"""CREATE TABLE {SCHEMA}.quality_results (
    run_id          VARCHAR NOT NULL,
    assessment_id   VARCHAR NOT NULL,
    partition_key   VARCHAR NOT NULL,
    table_name      VARCHAR NOT NULL,
    check_name      VARCHAR NOT NULL,
    expectation     VARCHAR NOT NULL,
    kwargs          VARCHAR NOT NULL,
    severity        VARCHAR NOT NULL CHECK (severity IN ('warn', 'error')),
    blocking        BOOLEAN NOT NULL,
    success         BOOLEAN NOT NULL,
    observed_value  VARCHAR,
    element_count   BIGINT,
    unexpected_count BIGINT,
    unexpected_percent DOUBLE,
    evaluated_at    TIMESTAMPTZ NOT NULL
)""",
        ),
    ),
)

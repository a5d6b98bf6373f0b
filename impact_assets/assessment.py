"""An assessment resolved against its SQL models and the installation's folders.

:func:`load_assessment` is what runs when definitions load: it validates the YAML, parses every SQL
model it selects, and checks that the bindings name tables and columns that exist, so mistakes are
reported with the spec's file and line before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from impact_assets.engine import NO_PYSPARK, TranspileError, to_spark
from impact_assets.errors import SpecError, SqlModelError
from impact_assets.modeling import (
    PREDICTIONS_TABLE,
    LocalModelRegistry,
    MlflowModelRegistry,
    predictions_columns,
)
from impact_assets.settings import ProjectPaths
from impact_assets.spec import AssessmentSpec, SpecSource, load_spec, spec_error
from impact_assets.sql import SqlProject, discover_models

__all__ = ["Assessment", "discover_assessments", "load_assessment"]

NO_ASSESSMENTS = "no assessment YAML files (*.yaml, *.yml) in {path}"
# tracking URIs of MLflow stores that are a database the client writes to (not a tracking server)
DATABASE_STORES = ("sqlite:", "postgresql", "mysql", "mssql")
DUPLICATE_ASSESSMENT = "assessment id {id!r} is used by both {first} and {second}"
UNKNOWN_MODEL = "{what} {name!r} is not a SQL model of this assessment (models: {models})"
UNKNOWN_COLUMN = "column {column!r} is not produced by SQL model {table!r} (columns: {columns})"
NOT_ON_SPARK = "the engine is spark, but this SQL has no Spark form: {reason}"
UNKNOWN_QUALITY_TABLE = "quality expectations name table {table!r}, which is not a SQL model, source or the predictions of this assessment (tables: {tables})"


@dataclass(frozen=True)
class Assessment:
    """A validated spec, its SQL models, and where its files live."""

    spec: AssessmentSpec
    source: SpecSource
    paths: ProjectPaths
    sql: SqlProject

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def schema(self) -> str:
        """DuckDB schema holding this assessment's data tables."""
        return self.spec.id

    @property
    def registry(self) -> LocalModelRegistry | MlflowModelRegistry | None:
        """The model registry, when this assessment scores with one."""
        scoring = self.spec.model.registry
        if scoring is None:
            return None
        if scoring.mlflow is not None:
            spec = scoring.mlflow
            uri = spec.tracking_uri
            if uri and uri.startswith("sqlite:///") and "{" in uri:
                uri = "sqlite:///" + str(self.paths.expand(uri.removeprefix("sqlite:///")))
            artifacts = spec.artifact_location
            if artifacts is None and uri and uri.startswith(DATABASE_STORES):
                # MLflow's default for a database store is ./mlruns in the working directory
                artifacts = "{state_dir}/mlflow-artifacts"
            return MlflowModelRegistry(
                spec.model_name,
                uri,
                experiment=spec.experiment,
                artifact_location=str(self.paths.expand(artifacts)) if artifacts else None,
            )
        folder = (
            self.paths.expand(scoring.path)
            if scoring.path
            else self.paths.models_dir / self.spec.id
        )
        return LocalModelRegistry(folder)

    @property
    def decision_sources(self) -> list[str]:
        """The sources of the decisions: every source but the outcomes table, whose changes
        re-assess cohorts, not partitions."""
        outcomes = self.spec.outcomes
        return [s for s in self.spec.sources if outcomes is None or s != outcomes.table]

    def source_path(self, name: str) -> Path:
        return self.paths.expand(self.spec.sources[name].path)

    def source_partition_column(self, name: str) -> str:
        return self.spec.sources[name].partition_column or self.spec.bindings.partition_column


def _check_columns(
    source: SpecSource | None, project: SqlProject, table: str, checks: list[tuple[tuple, str]]
) -> list[tuple[tuple, str]]:
    columns = project.columns.get(table)
    if columns is None:
        return []
    return [
        (loc, UNKNOWN_COLUMN.format(column=column, table=table, columns=list(columns)))
        for loc, column in checks
        if column not in columns
    ]


def load_assessment(path: str | Path, paths: ProjectPaths) -> Assessment:
    """Load and validate one assessment file.

    Raises:
        SpecError: The YAML or its references are invalid (file, line and field named).
        SqlModelError: A selected SQL model cannot be parsed or resolved (model file named).
    """
    spec, source = load_spec(path)
    try:
        models = discover_models(paths.sql_dir, spec.sql.paths)
    except SqlModelError as exc:
        raise SqlModelError(
            exc.message, context={**exc.context, "spec": str(source.path)}
        ) from None
    external: dict[str, dict[str, str] | None] = dict.fromkeys(spec.sources)
    scoring = spec.model.registry
    if scoring is not None:
        external[PREDICTIONS_TABLE] = predictions_columns(
            scoring.id_column, "UNKNOWN", spec.bindings.partition_column
        )
    project = SqlProject(models, external=external, reserved=[PREDICTIONS_TABLE] if scoring else [])

    problems: list[tuple[tuple, str]] = []
    names = sorted(project.models)
    bindings = spec.bindings
    if bindings.scored_table not in project.models:
        problems.append(
            (
                ("bindings", "scored_table"),
                UNKNOWN_MODEL.format(what="scored_table", name=bindings.scored_table, models=names),
            )
        )
    else:
        wanted = [
            (("bindings", field), getattr(bindings, field))
            for field in ("id_column", "partition_column", "label", "prediction", "score")
            if getattr(bindings, field) is not None
            and not (field == "label" and spec.outcomes and spec.outcomes.table)
        ]
        wanted += [
            (("bindings", "sensitive_features", i, "name"), f.name)
            for i, f in enumerate(bindings.sensitive_features)
        ]
        problems += _check_columns(source, project, bindings.scored_table, wanted)
    if scoring is not None:
        if scoring.features_table not in project.models:
            problems.append(
                (
                    ("model", "registry", "features_table"),
                    UNKNOWN_MODEL.format(
                        what="features_table", name=scoring.features_table, models=names
                    ),
                )
            )
        else:
            wanted = [
                (("model", "registry", "features", i), c) for i, c in enumerate(scoring.features)
            ]
            wanted += [
                (("model", "registry", field), getattr(scoring, field))
                for field in ("id_column", "label")
            ]
            problems += _check_columns(source, project, scoring.features_table, wanted)
    problems += _outcome_problems(spec, project)
    problems += _quality_problems(spec, project)
    problems += _quality_ref_problems(spec)
    if spec.engine.kind == "spark":
        problems += _spark_problems(spec, project, source)
    if problems:
        raise spec_error(source, problems)
    return Assessment(spec=spec, source=source, paths=paths, sql=project)


def _outcome_problems(spec: AssessmentSpec, project: SqlProject) -> list[tuple[tuple, str]]:
    outcomes = spec.outcomes
    if outcomes is None or outcomes.table is None:
        return []
    if outcomes.table not in project.models and outcomes.table not in spec.sources:
        tables = sorted([*project.models, *spec.sources])
        return [
            (
                ("outcomes", "table"),
                f"outcomes table {outcomes.table!r} is not a SQL model or source of this assessment (tables: {tables})",
            )
        ]
    wanted = [
        (("outcomes", field), getattr(outcomes, field) or default)
        for field, default in (
            ("id_column", spec.bindings.id_column),
            ("label", spec.bindings.label),
            ("observed_at", None),
        )
        if getattr(outcomes, field) or default
    ]
    return _check_columns(None, project, outcomes.table, wanted)


def _spark_problems(
    spec: AssessmentSpec, project: SqlProject, source: SpecSource
) -> list[tuple[tuple, str]]:
    """What of the assessment's SQL has no Spark form: a model raises, spec expressions are listed.

    Raises:
        SqlModelError: A SQL model cannot be transpiled (the model's path and sqlglot's reason).
        SpecError: PySpark is not installed.
    """
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise spec_error(source, [(("engine", "kind"), NO_PYSPARK)]) from None
    for model in project.models.values():
        try:
            to_spark(model.sql.strip().rstrip(";"))
        except TranspileError as exc:
            raise SqlModelError(
                NOT_ON_SPARK.format(reason=exc),
                context={"model": str(model.path), "spec": str(source.path)},
            ) from None
    expressions = [
        (("analytics", "kpis", i, "sql"), k.sql) for i, k in enumerate(spec.analytics.kpis)
    ]
    for i, causal in enumerate(spec.analytics.causal):
        expressions += [
            (("analytics", "causal", i, field), getattr(causal, field))
            for field in ("outcome", "treated", "comparison")
            if getattr(causal, field)
        ]
    problems = []
    for at, sql in expressions:
        try:
            to_spark(f"SELECT {sql} FROM _rows")
        except TranspileError as exc:
            problems.append((at, NOT_ON_SPARK.format(reason=exc)))
    return problems


def _quality_ref_problems(spec: AssessmentSpec) -> list[tuple[tuple, str]]:
    from impact_assets.quality import assessment_checks

    checks = {(c.table, c.name) for c in assessment_checks(spec)}
    problems: list[tuple[tuple, str]] = []
    for i, entry in enumerate(spec.register_entries):
        ref = entry.measure
        if ref.source == "quality" and (ref.table, ref.check) not in checks:
            known = sorted(f"{t}.{c}" for t, c in checks)
            problems.append(
                (
                    ("register", i, "measure", "check"),
                    f"no quality check {ref.check!r} on table {ref.table!r} (checks: {known})",
                )
            )
    return problems


def _quality_problems(spec: AssessmentSpec, project: SqlProject) -> list[tuple[tuple, str]]:
    from impact_assets.quality import check_expectation

    problems: list[tuple[tuple, str]] = []
    tables = {*project.models, *spec.sources, *([PREDICTIONS_TABLE] if spec.model.registry else [])}
    for table, expectations in spec.quality.tables.items():
        at = ("quality", "tables", table)
        if table not in tables:
            problems.append((at, UNKNOWN_QUALITY_TABLE.format(table=table, tables=sorted(tables))))
            continue
        for i, expectation in enumerate(expectations):
            try:
                check_expectation(expectation.expectation, expectation.kwargs)
            except ValueError as exc:
                field = "expectation" if "unknown expectation" in str(exc) else "kwargs"
                problems.append(((*at, i, field), str(exc)))
                continue
            column = expectation.kwargs.get("column")
            if column is not None:
                problems += _check_columns(
                    None, project, table, [((*at, i, "kwargs", "column"), column)]
                )
    return problems


def spec_files(folder: Path) -> list[Path]:
    """The assessment YAML files of a folder, in name order."""
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def discover_assessments(paths: ProjectPaths) -> list[Assessment]:
    """Every assessment in the assessments folder, ids unique."""
    files = spec_files(paths.assessments_dir)
    if not files:
        raise SpecError(NO_ASSESSMENTS.format(path=paths.assessments_dir))
    loaded: dict[str, Assessment] = {}
    for file in files:
        assessment = load_assessment(file, paths)
        if assessment.id in loaded:
            raise SpecError(
                DUPLICATE_ASSESSMENT.format(
                    id=assessment.id, first=loaded[assessment.id].source.path, second=file
                )
            )
        loaded[assessment.id] = assessment
    return list(loaded.values())

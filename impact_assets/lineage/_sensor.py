"""The lineage sensor: delivers the lineage of finished runs, and retries while the backend is down."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from impact_assets.assessment import Assessment
from impact_assets.lineage._catalog import LineageCatalog
from impact_assets.lineage._deliver import deliver_pending
from impact_assets.settings import ProjectPaths

__all__ = ["LINEAGE_SENSOR", "lineage_sensor"]

LINEAGE_SENSOR = "impact_assets__lineage_sensor"


def lineage_sensor(
    assessments: Sequence[Assessment], paths: ProjectPaths, interval_seconds: int = 30
) -> dg.SensorDefinition:
    """One sensor per code location (the delivery cursor covers the instance's whole event log)."""

    @dg.sensor(
        name=LINEAGE_SENSOR,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Sends the OpenLineage events of finished assessment runs; keeps them while the backend is down.",
    )
    def _lineage(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        catalog = LineageCatalog(assessments, context.repository_def.asset_graph)
        report = deliver_pending(
            context.instance, catalog, paths.state_dir, max_seconds=interval_seconds
        )
        if report.error:
            context.log.warning(report.summary())
        elif report.rejected:
            context.log.error(
                report.summary() + f" (see {paths.state_dir / 'lineage' / 'rejected.jsonl'})"
            )
        return dg.SkipReason(report.summary())

    return _lineage

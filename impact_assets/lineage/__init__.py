"""OpenLineage: the assessments' runs as schema-valid lineage events, delivered from Dagster's event log."""

from impact_assets.lineage._catalog import AssetLineage, Dataset, LineageCatalog
from impact_assets.lineage._deliver import (
    DeliveryReport,
    deliver_pending,
    lineage_client,
    pending_lineage,
)
from impact_assets.lineage._events import (
    IMPACT_FACET_SCHEMA_URL,
    PRODUCER,
    ImpactAssessmentRunFacet,
    column_lineage_facet,
    run_events,
)
from impact_assets.lineage._sensor import LINEAGE_SENSOR, lineage_sensor

__all__ = [
    "IMPACT_FACET_SCHEMA_URL",
    "LINEAGE_SENSOR",
    "PRODUCER",
    "AssetLineage",
    "Dataset",
    "DeliveryReport",
    "ImpactAssessmentRunFacet",
    "LineageCatalog",
    "column_lineage_facet",
    "deliver_pending",
    "lineage_client",
    "lineage_sensor",
    "pending_lineage",
    "run_events",
]

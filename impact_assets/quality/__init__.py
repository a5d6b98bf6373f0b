"""Data quality: Great Expectations 1.x expectations from the spec, evaluated per partition."""

from impact_assets.quality._catalog import (
    build_expectation,
    check_expectation,
    expectation_classes,
)
from impact_assets.quality._evaluate import MASK, QualityResult, evaluate_checks, warm_up
from impact_assets.quality._suite import (
    BATCH_IS_FRESH,
    QualityCheck,
    assessment_checks,
    check_name,
    fresh_after,
)

__all__ = [
    "BATCH_IS_FRESH",
    "MASK",
    "QualityCheck",
    "QualityResult",
    "assessment_checks",
    "build_expectation",
    "check_expectation",
    "check_name",
    "evaluate_checks",
    "expectation_classes",
    "fresh_after",
    "warm_up",
]

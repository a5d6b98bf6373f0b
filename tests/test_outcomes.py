"""Performance estimated before outcomes arrive (CBPE per group): its intervals cover the realised
rates as often as they say, and it is refused where the score is not calibrated."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from impact_assets.fairness import group_cells, group_metrics
from impact_assets.outcomes import ESTIMATED_METRICS, calibration_refusals, estimated_performance
from impact_assets.outcomes._estimate import NOT_CALIBRATED
from impact_assets.spec import Bindings

COHORTS = 1000
ROWS = 1200
START = dt.date(2025, 1, 1)


def _bindings() -> Bindings:
    return Bindings.model_validate(
        {
            "scored_table": "scored",
            "id_column": "id",
            "partition_column": "day",
            "label": "y",
            "prediction": "yhat",
            "score": "score",
            "sensitive_features": [{"name": "sex", "values": ["f", "m"]}],
            "min_group_size": 50,
        }
    )


def _cohorts(seed: int, *, days: int = COHORTS, miscalibrated: bool = False) -> pd.DataFrame:
    """``COHORTS`` days of decisions whose outcomes are drawn from the score (calibrated) or from
    a distorted score (an outcome far likelier than the score says)."""
    rng = np.random.default_rng(seed)
    n = days * ROWS
    sex = rng.choice(["f", "m"], size=n, p=[0.4, 0.6])
    # the groups' scores differ in level and spread, so their rates differ
    score = np.where(sex == "f", rng.beta(3, 2, size=n), rng.beta(4, 2, size=n))
    truth = np.sqrt(score) if miscalibrated else score
    return pd.DataFrame(
        {
            "day": np.repeat(pd.date_range(START, periods=days, freq="D").date, ROWS),
            "sex": sex,
            "score": score,
            "yhat": (score >= 0.6).astype(int),
            "y": (rng.random(n) < truth).astype(int),
        }
    )


def _cells_by_day(rows: pd.DataFrame) -> list[pd.DataFrame]:
    days = sorted(rows["day"].unique())
    with duckdb.connect() as conn:
        conn.register("_rows", rows)
        conn.execute("CREATE TABLE scored AS SELECT * FROM _rows")
        conn.unregister("_rows")
        return [
            group_cells(conn, "scored", _bindings(), partition_key=str(day)).frame for day in days
        ]


@pytest.fixture(scope="module")
def calibrated() -> list[pd.DataFrame]:
    return _cells_by_day(_cohorts(20261205))


def _realised(cells: pd.DataFrame) -> pd.DataFrame:
    return group_metrics(cells, _bindings().feature_sets, min_group_size=50)


def test_estimates_cover_the_realised_rates_as_often_as_their_level(calibrated):
    feature_sets = _bindings().feature_sets
    # the first 30 days are the matured reference window on which calibration is checked
    reference = _realised(
        pd.concat(calibrated[:30])
        .groupby(["sex", "y_true", "y_pred", "score_bin"], as_index=False)[
            ["n", "score_sum", "score_sq"]
        ]
        .sum()
    )
    refusals = calibration_refusals(reference, bound=0.02, window="the first 30 days")
    assert refusals and all(r is None for r in refusals.values()), refusals
    keys = ["feature_set", "group_key", "metric"]
    hits = []
    for cells in calibrated:
        estimate = estimated_performance(
            cells, feature_sets, refusals, min_group_size=50, window="the first 30 days"
        )
        assert estimate["reason"].isna().all()
        assert (
            (estimate["ci_low"] <= estimate["value"]) & (estimate["value"] <= estimate["ci_high"])
        ).all()
        both = estimate.merge(
            _realised(cells)[[*keys, "value"]], on=keys, suffixes=("", "_realised")
        )
        assert len(both) == len(estimate)
        hits.append(
            both.assign(
                hit=(both["ci_low"] <= both["value_realised"])
                & (both["value_realised"] <= both["ci_high"])
            )
        )
    covered = pd.concat(hits).groupby(["group_key", "metric"])["hit"].agg(["mean", "size"])
    assert set(covered.index.get_level_values("metric")) == set(ESTIMATED_METRICS)
    assert set(covered.index.get_level_values("group_key")) == {"f", "m", "overall"}
    assert (covered["size"] == COHORTS).all()
    assert covered["mean"].between(0.93, 0.97).all(), covered


def test_the_estimate_is_centred_on_the_realised_rate(calibrated):
    # over many cohorts the realised rate's mean equals the estimate's mean (no bias)
    feature_sets = _bindings().feature_sets
    refusals = {(f, g): None for f, g in [("sex", "f"), ("sex", "m"), ("overall", "overall")]}
    gaps = []
    for cells in calibrated[:100]:
        estimate = estimated_performance(
            cells, feature_sets, refusals, min_group_size=50, window="w"
        ).set_index(["feature_set", "group_key", "metric"])["value"]
        realised = _realised(cells).set_index(["feature_set", "group_key", "metric"])["value"]
        gaps.append((estimate - realised.loc[estimate.index]).to_numpy(dtype=float))
    assert np.abs(np.mean(gaps, axis=0)).max() < 0.005


def test_a_miscalibrated_score_is_refused_with_the_reason():
    days = _cells_by_day(_cohorts(7, days=2, miscalibrated=True))
    reference = _realised(days[0])
    refusals = calibration_refusals(reference, bound=0.05, window="2025-01-01")
    ece = reference.set_index(["feature_set", "group_key", "metric"]).loc[
        ("sex", "f", "expected_calibration_error"), "value"
    ]
    assert refusals[("sex", "f")] == NOT_CALIBRATED.format(ece=ece, window="2025-01-01", bound=0.05)
    estimate = estimated_performance(
        days[1], _bindings().feature_sets, refusals, min_group_size=50, window="2025-01-01"
    )
    assert estimate["value"].isna().all()
    assert (
        estimate["reason"]
        == estimate.apply(lambda r: refusals[(r.feature_set, r.group_key)], axis=1)
    ).all()
    assert (
        estimate["reason"]
        .str.startswith("no estimate: the score's expected calibration error")
        .all()
    )


def test_small_groups_and_missing_references_get_no_estimate(calibrated):
    cells = calibrated[0]
    refusals = {("sex", "m"): None, ("overall", "overall"): None}  # no reference for women
    out = estimated_performance(
        cells, _bindings().feature_sets, refusals, min_group_size=50, window="March"
    ).set_index(["group_key", "metric"])
    assert out.loc["f", "value"].isna().all()
    assert set(out.loc["f", "reason"]) == {
        "no estimate: the matured reference window March has no calibration result for this group"
    }
    assert out.loc["m", "value"].notna().all()
    small = estimated_performance(
        cells, _bindings().feature_sets, refusals, min_group_size=1000, window="March"
    ).set_index(["group_key", "metric"])
    women = int((cells["n"] * (cells["sex"] == "f")).sum())
    assert set(small.loc["f", "reason"]) == {
        f"group has {women} rows, fewer than the minimum group size 1000"
    }
    assert small.loc["f", "suppressed"].all() and not small.loc["overall", "suppressed"].any()

"""Performance estimated before outcomes arrive (CBPE per group): its intervals cover the realised
rates as often as they say, and it is refused where the score is not calibrated."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from impact_assets.fairness import group_cells, group_metrics
from impact_assets.outcomes import (
    ESTIMATED_METRICS,
    calibration_refusals,
    cohort_of,
    estimated_performance,
    label_coverage,
)
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


@pytest.mark.parametrize(
    ("day", "window", "key", "start", "end"),
    [
        ("2026-03-04", "day", "2026-03-04", "2026-03-04", "2026-03-04"),
        ("2026-03-04", "week", "2026-W10", "2026-03-02", "2026-03-08"),
        ("2027-01-01", "week", "2026-W53", "2026-12-28", "2027-01-03"),
        ("2024-02-10", "month", "2024-02", "2024-02-01", "2024-02-29"),
        ("2026-12-31", "month", "2026-12", "2026-12-01", "2026-12-31"),
        ("2025-07-19", "year", "2025", "2025-01-01", "2025-12-31"),
    ],
)
def test_cohort_windows(day, window, key, start, end):
    cohort = cohort_of(dt.date.fromisoformat(day), window)
    assert (cohort.key, cohort.start.isoformat(), cohort.end.isoformat()) == (key, start, end)
    matures = dt.date.fromisoformat(end) + dt.timedelta(days=90)
    assert cohort.matures_on(90) == matures
    assert cohort.is_mature(matures, 90) and not cohort.is_mature(
        matures - dt.timedelta(days=1), 90
    )


def test_label_coverage_by_group_with_outcomes_only_for_approved_cases():
    decisions = pd.DataFrame(
        {
            "id": range(1, 11),
            "day": pd.to_datetime(["2026-03-02"] * 8 + ["2026-03-09"] * 2).date,
            "sex": ["f", "f", "f", "f", "m", "m", "m", None, "f", "m"],
            "yhat": [1, 1, 0, 0, 1, 1, 1, 0, 1, 1],
        }
    )
    # outcomes of 1, 2 (women, approved), 3 (declined: known only by chance), 5 (man, approved),
    # 9 (next week's cohort) and 42 (no such decision)
    outcomes = pd.DataFrame({"app": [1, 2, 3, 5, 9, 42], "repaid": [1, 0, 1, 1, 0, 1]})
    bindings = _bindings().model_copy(
        update={"sensitive_features": (_bindings().sensitive_features[0],)}
    )
    with duckdb.connect() as conn:
        conn.register("decisions", decisions)
        conn.register("outcomes", outcomes)
        week = cohort_of(dt.date(2026, 3, 4), "week")
        every = label_coverage(
            conn, "decisions", "outcomes", bindings, week, outcome_id="app", outcome_label="repaid"
        ).set_index("group_key")
        approved = label_coverage(
            conn,
            "decisions",
            "outcomes",
            bindings,
            week,
            outcome_id="app",
            outcome_label="repaid",
            observed_for="positive_decisions",
        ).set_index("group_key")
    # the NULL sex is its own group, "(missing)", as in the group metrics
    assert every.loc[
        ["f", "m", "(missing)", "overall"], ["decisions", "observable", "labelled"]
    ].values.tolist() == [
        [4, 4, 3],
        [3, 3, 1],
        [1, 1, 0],
        [8, 8, 4],
    ]
    assert every.loc["overall", "coverage"] == 0.5
    assert approved.loc[
        ["f", "m", "(missing)", "overall"], ["decisions", "observable", "labelled"]
    ].values.tolist() == [
        [4, 2, 2],
        [3, 3, 1],
        [1, 0, 0],
        [8, 5, 3],
    ]
    assert approved.loc["f", "coverage"] == 1.0 and np.isnan(approved.loc["(missing)", "coverage"])

"""Group metrics from DuckDB cells equal fairlearn's MetricFrame on the raw rows."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impact_assets import DataContractError
from impact_assets.fairness import METRIC_FUNCTIONS, MISSING_GROUP, disparities, group_cells, group_metrics
from impact_assets.spec import Bindings

FEATURES = ("sex", "band")
FEATURE_SETS = {"sex": ("sex",), "band": ("band",), "sex×band": ("sex", "band"), "overall": ()}


def _bindings(**overrides) -> Bindings:
    return Bindings.model_validate(
        {
            "scored_table": "scored",
            "id_column": "id",
            "partition_column": "day",
            "label": "y",
            "prediction": "yhat",
            "sensitive_features": [{"name": "sex"}, {"name": "band"}],
            "intersections": [["sex", "band"]],
            "min_group_size": 1,
            **overrides,
        }
    )


def _cells_from_duckdb(rows: pd.DataFrame, bindings: Bindings) -> pd.DataFrame:
    with duckdb.connect() as conn:
        conn.register("_rows", rows)
        conn.execute("CREATE TABLE scored AS SELECT *, DATE '2026-03-02' AS day FROM _rows")
        return group_cells(conn, "scored", bindings, partition_key="2026-03-02").frame


def _random_rows(seed: int, n: int, groups: int, positives: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["f", "m", "x"][: max(1, min(3, groups))], size=n, p=None)
    band = rng.choice([f"b{i}" for i in range(groups)], size=n, p=np.linspace(1, 3, groups) / np.linspace(1, 3, groups).sum())
    y = (rng.random(n) < positives).astype(int)
    yhat = np.where(rng.random(n) < 0.7, y, 1 - y)
    return pd.DataFrame({"sex": sex, "band": band, "y": y, "yhat": yhat})


def _assert_equals_fairlearn(rows: pd.DataFrame, metrics: pd.DataFrame) -> None:
    for name, features in FEATURE_SETS.items():
        sensitive = rows[list(features)] if features else pd.Series("overall", index=rows.index, name="all")
        frame = MetricFrame(metrics=METRIC_FUNCTIONS, y_true=rows["y"], y_pred=rows["yhat"], sensitive_features=sensitive)
        ours = metrics[metrics["feature_set"] == name]
        for row in ours[ours["metric"] != "count"].itertuples():
            key = tuple(row.group_key.split("×")) if len(features) > 1 else row.group_key
            expected = frame.by_group.loc[key, row.metric] if features else frame.overall[row.metric]
            if row.value is None or pd.isna(row.value):
                # only where the denominator is empty: fairlearn reports 0 there
                assert row.reason.startswith("undefined"), row
                continue
            assert row.value == pytest.approx(float(expected), abs=1e-9), (name, row.group_key, row.metric)
        counts = ours[ours["metric"] == "count"].set_index("group_key")["n"]
        if features:
            assert counts.to_dict() == {("×".join(k) if isinstance(k, tuple) else k): v for k, v in rows.groupby(list(features)).size().items()}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 400),
    groups=st.integers(1, 4),
    positives=st.sampled_from([0.0, 0.05, 0.5, 0.95, 1.0]),
)
def test_group_metrics_equal_metricframe_on_raw_rows(seed, n, groups, positives):
    rows = _random_rows(seed, n, groups, positives)
    bindings = _bindings()
    metrics = group_metrics(_cells_from_duckdb(rows, bindings), bindings.feature_sets, min_group_size=1)
    _assert_equals_fairlearn(rows, metrics)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(60, 400))
def test_disparities_equal_fairlearn(seed, n):
    rows = _random_rows(seed, n, 3, 0.5)
    # every group must have both outcomes for fairlearn's rates to be defined as ours are
    if rows.groupby("band")["y"].nunique().min() < 2 or rows["band"].nunique() < 2:
        return
    bindings = _bindings()
    metrics = group_metrics(_cells_from_duckdb(rows, bindings), bindings.feature_sets, min_group_size=1)
    gaps = disparities(metrics, bindings.feature_sets).set_index(["feature_set", "metric", "method", "relative_to"])["value"]
    y, yhat, band = rows["y"], rows["yhat"], rows["band"]
    assert gaps["band", "demographic_parity", "difference", "between_groups"] == pytest.approx(demographic_parity_difference(y, yhat, sensitive_features=band), abs=1e-9)
    assert gaps["band", "demographic_parity", "ratio", "between_groups"] == pytest.approx(demographic_parity_ratio(y, yhat, sensitive_features=band), abs=1e-9)
    assert gaps["band", "demographic_parity", "difference", "to_overall"] == pytest.approx(
        demographic_parity_difference(y, yhat, sensitive_features=band, method="to_overall"), abs=1e-9
    )
    assert gaps["band", "demographic_parity", "ratio", "to_overall"] == pytest.approx(
        demographic_parity_ratio(y, yhat, sensitive_features=band, method="to_overall"), abs=1e-9
    )
    assert gaps["band", "equalized_odds", "difference", "between_groups"] == pytest.approx(equalized_odds_difference(y, yhat, sensitive_features=band), abs=1e-9)
    assert gaps["band", "equalized_odds", "ratio", "between_groups"] == pytest.approx(equalized_odds_ratio(y, yhat, sensitive_features=band), abs=1e-9)
    if rows.groupby(["sex", "band"])["y"].nunique().min() < 2:
        return
    tpr = MetricFrame(metrics=METRIC_FUNCTIONS["true_positive_rate"], y_true=y, y_pred=yhat, sensitive_features=rows[["sex", "band"]])
    assert gaps["sex×band", "equal_opportunity", "difference", "between_groups"] == pytest.approx(tpr.difference(), abs=1e-9)


def test_small_groups_are_suppressed_not_dropped():
    rows = pd.DataFrame({"sex": ["f"] * 5 + ["m"] * 40, "band": ["a"] * 45, "y": [1, 0] * 22 + [1], "yhat": [1] * 45})
    bindings = _bindings(min_group_size=10)
    metrics = group_metrics(_cells_from_duckdb(rows, bindings), bindings.feature_sets, min_group_size=10)
    female = metrics[(metrics["feature_set"] == "sex") & (metrics["group_key"] == "f")]
    assert female["suppressed"].all()
    assert female[female["metric"] != "count"]["value"].isna().all()
    assert "fewer than the minimum group size 10" in female["reason"].iloc[0]
    gaps = disparities(metrics, bindings.feature_sets)
    sex_gap = gaps[(gaps["feature_set"] == "sex") & (gaps["metric"] == "selection_rate")].iloc[0]
    assert pd.isna(sex_gap["value"]) and "fewer than two groups" in sex_gap["reason"] and sex_gap["groups_suppressed"] == 1


def test_null_sensitive_values_form_their_own_group_or_are_rejected():
    rows = pd.DataFrame({"sex": ["f", None, "m", None], "band": ["a"] * 4, "y": [1, 0, 1, 0], "yhat": [1, 1, 0, 0]})
    cells = _cells_from_duckdb(rows, _bindings())
    assert MISSING_GROUP in set(cells["sex"])
    with pytest.raises(DataContractError, match="2 rows of partition 2026-03-02 have NULL in sensitive feature 'sex'"):
        _cells_from_duckdb(rows, _bindings(missing_groups="reject"))


@pytest.mark.parametrize(
    ("y", "yhat", "message"),
    [
        ([0, 1, 2], [0, 1, 1], "'y' must be binary .* has 3 distinct values"),
        ([0, None, 1], [0, 1, 1], "1 rows of partition 2026-03-02 have NULL in 'y'"),
        ([0, 1, 1], [0, None, 1], "NULL in 'yhat'"),
    ],
)
def test_bad_labels_are_rejected(y, yhat, message):
    rows = pd.DataFrame({"sex": ["f", "m", "f"], "band": ["a"] * 3, "y": y, "yhat": yhat})
    with pytest.raises(DataContractError, match=message):
        _cells_from_duckdb(rows, _bindings())


def test_empty_partition_is_rejected():
    rows = pd.DataFrame({"sex": ["f"], "band": ["a"], "y": [1], "yhat": [1]})
    with duckdb.connect() as conn:
        conn.register("_rows", rows)
        conn.execute("CREATE TABLE scored AS SELECT *, DATE '2026-03-01' AS day FROM _rows")
        with pytest.raises(DataContractError, match="partition 2026-03-02 of scored has no rows"):
            group_cells(conn, "scored", _bindings(), partition_key="2026-03-02")


def test_string_labels_use_the_positive_label():
    rows = pd.DataFrame({"sex": ["f", "m", "f", "m"], "band": ["a"] * 4, "y": ["good", "bad", "good", "good"], "yhat": ["good"] * 4})
    with duckdb.connect() as conn:
        conn.register("_rows", rows)
        conn.execute("CREATE TABLE scored AS SELECT *, DATE '2026-03-02' AS day FROM _rows")
        cells = group_cells(conn, "scored", _bindings(), partition_key="2026-03-02", positive_label="good").frame
    assert cells.groupby("y_true")["n"].sum().to_dict() == {0: 1, 1: 3}

"""Group metrics from DuckDB cells equal fairlearn's MetricFrame (and scikit-learn) on the raw rows."""

from __future__ import annotations

import warnings

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
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import brier_score_loss, roc_auc_score

from impact_assets import DataContractError
from impact_assets.fairness import (
    DECISION_FORMULAS,
    METRIC_FUNCTIONS,
    MISSING_GROUP,
    bootstrap_intervals,
    confusion_by_group,
    disparities,
    group_cells,
    group_metrics,
    resample_cells,
    score_auc,
)
from impact_assets.fairness._auc import _auc_in_memory, _auc_windowed
from impact_assets.fairness._bootstrap import _group_codes, _metrics_per_resample
from impact_assets.spec import INTERSECTION_SEPARATOR, Bindings

FEATURE_SETS = {"sex": ("sex",), "band": ("band",), "sex×band": ("sex", "band"), "overall": ()}
# Examples are slow (MetricFrame on both sides); a failure prints its seed, so skip shrinking.
SLOW = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)


def _bindings(**overrides) -> Bindings:
    return Bindings.model_validate(
        {
            "scored_table": "scored",
            "id_column": "id",
            "partition_column": "day",
            "label": "y",
            "prediction": "yhat",
            "score": "score",
            "sensitive_features": [{"name": "sex"}, {"name": "band"}],
            "intersections": [["sex", "band"]],
            "min_group_size": 1,
            **overrides,
        }
    )


def _table(conn: duckdb.DuckDBPyConnection, rows: pd.DataFrame, day: str = "2026-03-02") -> None:
    conn.register("_rows", rows)
    conn.execute(f"CREATE TABLE scored AS SELECT *, DATE '{day}' AS day FROM _rows")
    conn.unregister("_rows")


def _compute(rows: pd.DataFrame, bindings: Bindings, **kwargs):
    with duckdb.connect() as conn:
        _table(conn, rows)
        cells = group_cells(conn, "scored", bindings, partition_key="2026-03-02")
        auc = score_auc(conn, "scored", bindings, bindings.feature_sets, partition_key="2026-03-02")
    return cells, group_metrics(
        cells.frame,
        bindings.feature_sets,
        min_group_size=bindings.min_group_size,
        auc=auc,
        **kwargs,
    )


def _random_rows(
    seed: int, n: int, groups: int, positives: float, ties: bool = False
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    weights = np.linspace(1, 3, groups)
    sex = rng.choice(["f", "m", "x"][: max(1, min(3, groups))], size=n)
    band = rng.choice([f"b{i}" for i in range(groups)], size=n, p=weights / weights.sum())
    y = (rng.random(n) < positives).astype(int)
    score = np.clip(0.35 * y + rng.random(n) * 0.65, 0, 1)
    score = np.round(score, 1 if ties else 6)
    yhat = (score >= 0.5).astype(int)
    return pd.DataFrame({"sex": sex, "band": band, "y": y, "yhat": yhat, "score": score})


def _reference(rows: pd.DataFrame, features: tuple[str, ...]) -> MetricFrame:
    sensitive = (
        rows[list(features)] if features else pd.Series("overall", index=rows.index, name="all")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.filterwarnings(
            "ignore", message="y_pred contains classes not in y_true", category=UserWarning
        )
        warnings.filterwarnings(
            "ignore",
            message="A single label was found in 'y_true' and 'y_pred'",
            category=UserWarning,
        )
        return MetricFrame(
            metrics=METRIC_FUNCTIONS,
            y_true=rows["y"],
            y_pred=rows["yhat"],
            sensitive_features=sensitive,
        )


def _by_group(rows: pd.DataFrame, features: tuple[str, ...]):
    if not features:
        yield "overall", rows
        return
    for key, part in rows.groupby(list(features)):
        yield "×".join(key) if len(features) > 1 else key[0], part


@settings(max_examples=25, **SLOW)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 400),
    groups=st.integers(1, 4),
    positives=st.sampled_from([0.0, 0.05, 0.5, 0.95, 1.0]),
    ties=st.booleans(),
)
def test_group_metrics_equal_fairlearn_and_sklearn_on_raw_rows(seed, n, groups, positives, ties):
    rows = _random_rows(seed, n, groups, positives, ties)
    _, metrics = _compute(rows, _bindings())
    for name, features in FEATURE_SETS.items():
        frame = _reference(rows, features)
        ours = metrics[metrics["feature_set"] == name].set_index(["group_key", "metric"])
        for key, part in _by_group(rows, features):
            assert ours.loc[(key, "count"), "n"] == len(part)
            for metric in METRIC_FUNCTIONS:
                expected = (
                    frame.by_group.loc[tuple(key.split("×")) if len(features) > 1 else key, metric]
                    if features
                    else frame.overall[metric]
                )
                got = ours.loc[(key, metric)]
                if pd.isna(got["value"]):
                    assert got["reason"].startswith("undefined"), (
                        name,
                        key,
                        metric,
                    )  # fairlearn/sklearn give 0 or NaN there
                else:
                    assert got["value"] == pytest.approx(float(expected), abs=1e-9), (
                        name,
                        key,
                        metric,
                    )
            both = part["y"].nunique() == 2
            auc = ours.loc[(key, "auc"), "value"]
            assert (pd.isna(auc) and not both) or auc == pytest.approx(
                roc_auc_score(part["y"], part["score"]), abs=1e-9
            )
            assert ours.loc[(key, "brier_score"), "value"] == pytest.approx(
                brier_score_loss(part["y"], part["score"], labels=[0, 1]), abs=1e-9
            )
            bins = np.minimum(np.floor(part["score"] * 10), 9)
            ece = sum(abs(g["y"].sum() - g["score"].sum()) for _, g in part.groupby(bins)) / len(
                part
            )
            assert ours.loc[(key, "expected_calibration_error"), "value"] == pytest.approx(
                ece, abs=1e-9
            )


@settings(max_examples=25, **SLOW)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 3_000),
    ties=st.booleans(),
    signed_zero=st.booleans(),
)
def test_in_memory_auc_and_cells_by_value_on_null_and_undeclared_groups(seed, n, ties, signed_zero):
    """DuckDB's AUC (sorted keys in memory) equals the windowed SQL run on Spark, and the cells taken
    by the features' own values equal pandas' counts by group key, on the same rows: NULL and
    undeclared groups (two values in "(other)"), integer group values, ties, both zeros,
    one-outcome groups."""
    rng = np.random.default_rng(seed)
    rows = _random_rows(seed, n, 4, rng.choice([0.02, 0.5, 0.98]), ties)
    rows["sex"] = rows["sex"].where(rng.random(n) > 0.1, None)  # NULL: the (missing) group
    rows["band"] = rng.integers(0, 6, n)  # integers, two of them undeclared: the (other) group
    if signed_zero:
        rows.loc[rows["score"] == 0, "score"] = -0.0
        rows.loc[rng.random(n) < 0.2, "score"] = rng.choice([0.0, -0.0])
    bindings = _bindings(
        sensitive_features=[{"name": "sex"}, {"name": "band", "values": ["0", "1", "2", "3"]}]
    )
    with duckdb.connect() as conn:
        _table(conn, rows)
        args = (conn, "scored", bindings, bindings.feature_sets, "2026-03-02", 1)
        ours, windowed = _auc_in_memory(*args), _auc_windowed(*args)
        cells = group_cells(conn, "scored", bindings, partition_key="2026-03-02").frame
    pd.testing.assert_frame_equal(
        ours, windowed, check_dtype=False, check_exact=False, rtol=1e-12, atol=1e-12
    )
    keys = rows.assign(
        sex=rows["sex"].where(rows["sex"].notna(), MISSING_GROUP),
        band=rows["band"].astype(str).where(rows["band"] < 4, "(other)"),
        score_bin=np.minimum(np.floor(rows["score"] * 100), 99).astype(int),
    )
    expected = keys.groupby(["sex", "band", "y", "yhat", "score_bin"], as_index=False).agg(
        n=("score", "size"), score_sum=("score", "sum")
    )
    got = cells.rename(columns={"y_true": "y", "y_pred": "yhat"})
    pd.testing.assert_frame_equal(
        got[expected.columns].reset_index(drop=True),
        expected,
        check_dtype=False,
        check_exact=False,
        rtol=1e-12,
        atol=1e-12,
    )


@settings(max_examples=20, **SLOW)
@given(seed=st.integers(0, 10_000), n=st.integers(60, 400))
def test_disparities_equal_fairlearn(seed, n):
    rows = _random_rows(seed, n, 3, 0.5)
    if rows["band"].nunique() < 2 or rows.groupby("band")["y"].nunique().min() < 2:
        return  # fairlearn's rates would be 0 where ours are undefined
    bindings = _bindings()
    _, metrics = _compute(rows, bindings)
    gaps = disparities(metrics, bindings.feature_sets).set_index(
        ["feature_set", "metric", "method", "relative_to"]
    )["value"]
    y, yhat, band = rows["y"], rows["yhat"], rows["band"]
    for method in ("between_groups", "to_overall"):
        assert gaps["band", "demographic_parity", "difference", method] == pytest.approx(
            demographic_parity_difference(y, yhat, sensitive_features=band, method=method), abs=1e-9
        )
        assert gaps["band", "demographic_parity", "ratio", method] == pytest.approx(
            demographic_parity_ratio(y, yhat, sensitive_features=band, method=method), abs=1e-9
        )
        assert gaps["band", "equalized_odds", "difference", method] == pytest.approx(
            equalized_odds_difference(y, yhat, sensitive_features=band, method=method), abs=1e-9
        )
        assert gaps["band", "equalized_odds", "ratio", method] == pytest.approx(
            equalized_odds_ratio(y, yhat, sensitive_features=band, method=method), abs=1e-9
        )
    frame = _reference(rows, ("band",))
    for metric in ("precision", "accuracy", "f1", "balanced_accuracy"):
        assert gaps["band", metric, "difference", "between_groups"] == pytest.approx(
            frame.difference()[metric], abs=1e-9
        )
        assert gaps["band", metric, "ratio", "to_overall"] == pytest.approx(
            frame.ratio(method="to_overall")[metric], abs=1e-9
        )


def test_reference_group_disparity():
    rows = pd.DataFrame(
        {
            "sex": ["f"] * 4 + ["m"] * 4 + ["x"] * 4,
            "band": "a",
            "y": [1, 0] * 6,
            "yhat": [1, 0, 0, 0, 1, 1, 1, 0, 1, 1, 0, 0],  # f: 1/4, m: 3/4, x: 2/4 approved
            "score": 0.5,
        }
    )
    bindings = _bindings()
    _, metrics = _compute(rows, bindings)
    gaps = disparities(metrics, bindings.feature_sets, reference_groups={"sex": "m"})
    at = gaps.set_index(["feature_set", "metric", "method", "relative_to"])["value"]
    # selection rates f 0.25, m 0.75, x 0.5: against m, the largest gap is 0.5 and the smallest ratio 1/3
    assert at["sex", "selection_rate", "difference", "m"] == pytest.approx(0.5)
    assert at["sex", "selection_rate", "ratio", "m"] == pytest.approx(1 / 3)


def test_vectorized_formulas_equal_the_point_estimates():
    rows = _random_rows(7, 3000, 3, 0.4)
    bindings = _bindings()
    cells, metrics = _compute(rows, bindings)
    for name, features in bindings.feature_sets.items():
        counts = confusion_by_group(cells.frame, features)
        for metric, formula in DECISION_FORMULAS.items():
            values = formula(*(counts[k].to_numpy() for k in ("tp", "fp", "tn", "fn")))
            expected = metrics[
                (metrics["feature_set"] == name) & (metrics["metric"] == metric)
            ].set_index("group_key")["value"]
            np.testing.assert_allclose(
                values,
                expected.loc[counts.index].to_numpy(dtype="float64"),
                atol=1e-12,
                equal_nan=True,
            )


def test_bootstrap_of_the_observed_counts_reproduces_the_estimates():
    rows = _random_rows(3, 2000, 2, 0.5)
    bindings = _bindings()
    cells, metrics = _compute(rows, bindings)
    group_ci, gap_ci = bootstrap_intervals(
        cells.frame, bindings.feature_sets, metrics, resamples=300, level=0.95, seed=1
    )
    merged = metrics.merge(group_ci, on=["feature_set", "group_key", "metric"])
    defined = merged[merged["metric"].isin(list(DECISION_FORMULAS)) & merged["value"].notna()]
    assert (
        (defined["ci_low"] <= defined["value"]) & (defined["value"] <= defined["ci_high"])
    ).all()
    assert (gap_ci["ci_low"] <= gap_ci["ci_high"]).all()
    draws = resample_cells(cells.frame["n"].to_numpy(), 50, seed=2)
    assert (draws.sum(axis=1) == len(rows)).all()


def test_resampled_cell_counts_are_reproducible_and_unbiased_in_both_halves():
    """The draws are split over two threads; the split is fixed, so a seed gives the same draws."""
    counts = np.array([0, 4, 50, 1000, 3000])
    draws = resample_cells(counts, 2001, seed=9)
    assert draws.shape == (2001, 5)
    np.testing.assert_array_equal(draws, resample_cells(counts, 2001, seed=9))
    assert not np.array_equal(draws, resample_cells(counts, 2001, seed=10))
    assert (draws.sum(axis=1) == counts.sum()).all() and (draws[:, 0] == 0).all()
    p = counts / counts.sum()
    assert not np.array_equal(draws[:1000], draws[1001:])  # two generators, not one twice
    for half in (draws[:1001], draws[1001:]):  # each half is a multinomial sample of its own
        se = np.sqrt(counts.sum() * p * (1 - p) / len(half))
        assert (np.abs(half.mean(axis=0) - counts) <= 5 * se + 1e-12).all()
    assert resample_cells(counts, 1, seed=9).shape == (1, 5)


def test_the_resampled_auc_at_the_observed_counts_is_the_auc_of_the_score_bins():
    """Each resample's AUC is taken on the 100 score bins: at the observed counts, scikit-learn's
    AUC of the rows with each score replaced by its bin, group by group."""
    rows = _random_rows(11, 3000, 3, 0.4)
    bindings = _bindings()
    cells, _ = _compute(rows, bindings)
    binned = np.minimum(np.floor(rows["score"] * 100), 99)
    for features in FEATURE_SETS.values():
        codes, groups = _group_codes(cells.frame, features)
        observed = cells.frame["n"].to_numpy()[None, :]
        auc = _metrics_per_resample(observed, cells.frame, codes, len(groups), True, 10)["auc"][0]
        keys = (
            rows[list(features)].astype(str).agg(INTERSECTION_SEPARATOR.join, axis=1)
            if features
            else pd.Series("overall", index=rows.index)
        )
        expected = [roc_auc_score(rows["y"][keys == g], binned[keys == g]) for g in groups]
        np.testing.assert_allclose(auc, expected, rtol=1e-12)


def test_interval_coverage_of_a_known_selection_rate():
    """A 95 % interval of a selection rate with known truth covers it 93-97 % of the time."""
    true_rate, n, repetitions, covered = 0.3, 1500, 1000, 0
    rng = np.random.default_rng(20261124)
    cell_frame = pd.DataFrame(
        {
            "sex": ["f", "f"],
            "band": ["a", "a"],
            "y_true": [1, 1],
            "y_pred": [1, 0],
            "score_bin": [-1, -1],
            "score_sum": [0.0, 0.0],
            "score_sq": [0.0, 0.0],
        }
    )
    sets = {"overall": ()}
    for _ in range(repetitions):
        approved = rng.binomial(n, true_rate)
        cells = cell_frame.assign(n=[approved, n - approved])
        metrics = pd.DataFrame(
            [
                {
                    "feature_set": "overall",
                    "group_key": "overall",
                    "metric": "count",
                    "value": float(n),
                    "n": n,
                    "suppressed": False,
                }
            ]
        )
        ci, _ = bootstrap_intervals(
            cells, sets, metrics, resamples=400, level=0.95, seed=int(rng.integers(1 << 31))
        )
        low, high = ci.set_index("metric").loc["selection_rate", ["ci_low", "ci_high"]]
        covered += low <= true_rate <= high
    assert 0.93 <= covered / repetitions <= 0.97


def test_small_groups_are_suppressed_not_dropped():
    rows = pd.DataFrame(
        {
            "sex": ["f"] * 5 + ["m"] * 40,
            "band": "a",
            "y": [1, 0] * 22 + [1],
            "yhat": 1,
            "score": 0.7,
        }
    )
    bindings = _bindings(min_group_size=10)
    cells, metrics = _compute(rows, bindings)
    female = metrics[(metrics["feature_set"] == "sex") & (metrics["group_key"] == "f")]
    assert female["suppressed"].all()
    assert female[female["metric"] != "count"]["value"].isna().all()
    assert "fewer than the minimum group size 10" in female["reason"].iloc[0]
    gaps = disparities(metrics, bindings.feature_sets)
    sex_gap = gaps[(gaps["feature_set"] == "sex") & (gaps["metric"] == "selection_rate")].iloc[0]
    assert (
        pd.isna(sex_gap["value"])
        and "fewer than two groups" in sex_gap["reason"]
        and sex_gap["groups_suppressed"] == 1
    )
    group_ci, _ = bootstrap_intervals(
        cells.frame, bindings.feature_sets, metrics, resamples=50, level=0.9, seed=0
    )
    hidden = group_ci[(group_ci["feature_set"] == "sex") & (group_ci["group_key"] == "f")]
    assert hidden[["ci_low", "ci_high"]].isna().all().all()


def test_single_group_has_no_disparity():
    rows = pd.DataFrame(
        {"sex": "f", "band": "a", "y": [1, 0, 1], "yhat": [1, 1, 0], "score": [0.6, 0.7, 0.2]}
    )
    bindings = _bindings()
    _, metrics = _compute(rows, bindings)
    gaps = disparities(metrics, bindings.feature_sets)
    assert gaps["value"].isna().all()
    assert gaps["reason"].str.contains("fewer than two groups").all()


def test_null_sensitive_values_form_their_own_group_or_are_rejected():
    rows = pd.DataFrame(
        {
            "sex": ["f", None, "m", None],
            "band": "a",
            "y": [1, 0, 1, 0],
            "yhat": [1, 1, 0, 0],
            "score": 0.5,
        }
    )
    cells, _ = _compute(rows, _bindings())
    assert MISSING_GROUP in set(cells.frame["sex"])
    with pytest.raises(
        DataContractError,
        match="2 rows of partition 2026-03-02 have NULL in sensitive feature 'sex'",
    ):
        _compute(rows, _bindings(missing_groups="reject"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"y": [0, 1, 2]}, "'y' must be binary .* has 3 distinct values"),
        ({"y": [0, None, 1]}, "1 rows of partition 2026-03-02 have NULL in 'y'"),
        ({"yhat": [0, None, 1]}, "NULL in 'yhat'"),
        (
            {"score": [0.2, 1.5, 0.3]},
            "1 rows of partition 2026-03-02 have a score outside \\[0, 1\\]",
        ),
        ({"score": [0.2, None, 0.3]}, "NULL in 'score'"),
    ],
)
def test_bad_labels_and_scores_are_rejected(change, message):
    rows = pd.DataFrame(
        {
            "sex": ["f", "m", "f"],
            "band": "a",
            "y": [0, 1, 1],
            "yhat": [0, 1, 1],
            "score": [0.2, 0.8, 0.3],
            **change,
        }
    )
    with pytest.raises(DataContractError, match=message):
        _compute(rows, _bindings())


def test_empty_partition_is_rejected():
    with duckdb.connect() as conn:
        _table(
            conn,
            pd.DataFrame({"sex": ["f"], "band": ["a"], "y": [1], "yhat": [1], "score": [0.5]}),
            day="2026-03-01",
        )
        with pytest.raises(DataContractError, match="partition 2026-03-02 of scored has no rows"):
            group_cells(conn, "scored", _bindings(), partition_key="2026-03-02")


def test_string_labels_use_the_positive_label():
    rows = pd.DataFrame(
        {
            "sex": ["f", "m", "f", "m"],
            "band": "a",
            "y": ["good", "bad", "good", "good"],
            "yhat": ["good"] * 4,
            "score": 0.9,
        }
    )
    with duckdb.connect() as conn:
        _table(conn, rows)
        cells = group_cells(
            conn, "scored", _bindings(), partition_key="2026-03-02", positive_label="good"
        ).frame
    assert cells.groupby("y_true")["n"].sum().to_dict() == {0: 1, 1: 3}

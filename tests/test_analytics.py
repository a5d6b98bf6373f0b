"""Impact analytics: KPIs and cost-benefit by group, drift statistics, and register entries on them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from fairlearn.metrics import demographic_parity_difference, demographic_parity_ratio
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon
from sklearn.ensemble import RandomForestClassifier

from impact_assets import SpecError, assessment_job_name, build_definitions, load_assessment
from impact_assets.analytics import (
    DriftColumn,
    column_drift,
    compute_kpis,
    did_estimate,
    disparity_and_accuracy,
    permutation_sensitivity,
    psi,
)
from impact_assets.analytics._kpis import _decompose
from impact_assets.datasets import Rollout, simulate_batch
from impact_assets.modeling._linear_sql import linear_logit_sql
from impact_assets.pipeline import seeded_sample
from impact_assets.settings import ProjectPaths
from impact_assets.spec import AssessmentSpec

from .conftest import DAYS, REPO, VENDOR_SPEC, assess, spec_variant, vendor_project
from .did_cells import did_cells

ROWS = (  # decisions (score >= 0.5) of 8 applicants in two regions on 2026-03-02; one row the day after
    "id,day,region,outcome,score,loaded_at,amount\n"
    "1,2026-03-02,north,1,0.9,2026-03-03 01:00,100\n2,2026-03-02,north,0,0.7,2026-03-03 01:00,200\n"
    "3,2026-03-02,north,1,0.2,2026-03-03 01:00,300\n4,2026-03-02,north,1,0.8,2026-03-03 01:00,400\n"
    "5,2026-03-02,south,0,0.1,2026-03-03 01:00,500\n6,2026-03-02,south,1,0.6,2026-03-03 01:00,600\n"
    "7,2026-03-02,south,0,0.3,2026-03-03 01:00,700\n8,2026-03-02,south,1,0.4,2026-03-03 01:00,800\n"
    "9,2026-03-03,south,0,0.1,2026-03-04 01:00,900\n"
)
SQL = "SELECT id, CAST(day AS DATE) AS day, region, outcome, CAST(score >= 0.5 AS INTEGER) AS decision, score, amount FROM vendor_file\n"
ANALYTICS = """
analytics:
  kpis:
    - {name: approval_rate, sql: avg(decision)}
    - {name: approved_amount, sql: "sum(CASE WHEN decision = 1 THEN amount ELSE 0 END)"}
  cost_benefit: {tp: 0.1 * amount, fp: -0.5 * amount, tn: 0, fn: -1}
"""


def _kpis(project: ProjectPaths, min_group_size: int = 2) -> pd.DataFrame:
    vendor_project(project, ROWS, quality=ANALYTICS, sql=SQL)
    spec = project.assessments_dir / "vendor.yaml"
    spec.write_text(
        spec.read_text().replace("min_group_size: 2", f"min_group_size: {min_group_size}")
    )
    defs = build_definitions(project)
    with dg.instance_for_test() as instance:
        assert (
            defs.resolve_job_def(assessment_job_name("vendor_scores"))
            .execute_in_process(partition_key="2026-03-02", instance=instance)
            .success
        )
    with duckdb.connect(str(project.database), read_only=True) as conn:
        return conn.execute("SELECT * FROM impact.kpis").df()


def _expected(rows: pd.DataFrame) -> dict[str, float]:
    tp = (rows.decision == 1) & (rows.outcome == 1)
    fp = (rows.decision == 1) & (rows.outcome == 0)
    fn = (rows.decision == 0) & (rows.outcome == 1)
    values = {
        "approval_rate": rows.decision.mean(),
        "approved_amount": rows.amount[rows.decision == 1].sum(),
        "value_tp": 0.1 * rows.amount[tp].sum(),
        "value_fp": -0.5 * rows.amount[fp].sum(),
        "value_tn": 0.0,
        "value_fn": -1.0 * fn.sum(),
    }
    values["net_benefit"] = sum(values[k] for k in ("value_tp", "value_fp", "value_tn", "value_fn"))
    values["net_benefit_per_decision"] = values["net_benefit"] / len(rows)
    return values


def test_kpis_and_cost_benefit_equal_a_hand_count_per_group(project: ProjectPaths):
    got = _kpis(project)
    rows = pd.read_csv(pd.io.common.StringIO(ROWS))
    rows = rows[rows.day == "2026-03-02"].assign(decision=lambda f: (f.score >= 0.5).astype(int))
    groups = {("overall", "overall"): rows}
    groups |= {("region", r): g for r, g in rows.groupby("region")}
    assert len(got) == len(groups) * 8
    for (feature_set, group), frame in groups.items():
        mine = got[(got.feature_set == feature_set) & (got.group_key == group)].set_index("kpi")
        for kpi, value in _expected(frame).items():
            assert mine.loc[kpi, "value"] == pytest.approx(value, abs=1e-12), (group, kpi)
            assert mine.loc[kpi, "n"] == len(frame)
    assert set(got.loc[got.kpi.str.startswith(("value_", "net_")), "kind"]) == {"cost_benefit"}


KPI_SPEC = yaml.safe_load(VENDOR_SPEC) | {
    "analytics": {
        "kpis": [
            {"name": "approval_rate", "sql": "avg(decision)"},
            {"name": "rows", "sql": "count(*)"},
            {
                "name": "approved_amount",
                "sql": "sum(CASE WHEN decision = 1 THEN amount ELSE 0 END)",
            },
            {"name": "amount_range", "sql": "max(amount) - min(amount)"},
            {"name": "large_per_mean", "sql": "count_if(amount > 500) / avg(amount)"},
            {"name": "known_regions", "sql": "count(region)"},
            {"name": "median_amount", "sql": "median(amount)"},
        ],
        "cost_benefit": {"tp": 100, "fp": -250.5, "tn": 0, "fn": "-0.1 * amount"},
    }
}
KPI_SPEC["bindings"] |= {
    "sensitive_features": [{"name": "region", "values": ["north", "south"]}, {"name": "band"}],
    "intersections": [["region", "band"]],
    "min_group_size": 3,
}


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 300),
    regions=st.sampled_from(
        [["north", "south"], ["north", "south", None, "east"], ["north", "east", "west", None]]
    ),
    weighted=st.booleans(),
)
def test_kpis_from_cells_equal_pandas_on_the_rows(seed, n, regions, weighted):
    """KPIs and cost-benefit per group equal pandas: cells summed in Python; the spec KPIs that
    decompose evaluated over the cells' partials, the median over the rows, grouped by raw values when
    each is its own group, by group keys when two undeclared values share "(other)"."""
    spec = AssessmentSpec.model_validate(KPI_SPEC)
    rng = np.random.default_rng(seed)
    raw_regions = rng.choice(np.array(regions, dtype=object), n)
    rows = pd.DataFrame(
        {
            "region": raw_regions,
            "band": rng.choice([1, 2, 3], n),
            "outcome": rng.integers(0, 2, n),
            "decision": rng.integers(0, 2, n),
            "amount": rng.uniform(0, 1000, n).round(2),
            "w": rng.uniform(0.5, 2, n),
            "day": dt.date(2026, 3, 2),
        }
    )
    with duckdb.connect() as conn:
        conn.register("rows", rows)
        got = compute_kpis(
            conn, "rows", spec, "2026-03-02", weight="w" if weighted else None, selection_rate=True
        )
    rows = rows.assign(
        region=rows["region"].where(rows["region"].notna(), "(missing)"),
        band=rows["band"].astype(str),
        w=rows["w"] if weighted else 1.0,
    )
    rows.loc[~rows["region"].isin(["north", "south", "(missing)"]), "region"] = "(other)"
    groups = {("overall", "overall"): rows}
    groups |= {("region", k): g for k, g in rows.groupby("region")}
    groups |= {("band", k): g for k, g in rows.groupby("band")}
    groups |= {("region×band", f"{a}×{b}"): g for (a, b), g in rows.groupby(["region", "band"])}
    at = got.set_index(["kpi", "feature_set", "group_key"])
    assert len(got) == len(groups) * (7 if weighted else 14)
    for (feature_set, group), part in groups.items():
        yes, no = part["decision"] == 1, part["decision"] == 0
        good, bad = part["outcome"] == 1, part["outcome"] == 0
        w = part["w"]
        expected = {
            "selection_rate": w[yes].sum() / w.sum(),
            "value_tp": 100 * w[yes & good].sum(),
            "value_fp": -250.5 * w[yes & bad].sum(),
            "value_tn": 0.0,
            "value_fn": (w * -0.1 * part["amount"])[no & good].sum(),
        }
        expected["net_benefit"] = sum(expected[f"value_{c}"] for c in ("tp", "fp", "tn", "fn"))
        expected["net_benefit_per_decision"] = expected["net_benefit"] / w.sum()
        if not weighted:
            amount = part["amount"]
            expected |= {
                "approval_rate": part["decision"].mean(),
                "rows": len(part),
                "approved_amount": amount[yes].sum(),
                "amount_range": amount.max() - amount.min(),
                "large_per_mean": (amount > 500).sum() / amount.mean(),
                "known_regions": pd.notna(raw_regions[part.index]).sum(),
                "median_amount": amount.median(),
            }
        small = feature_set != "overall" and len(part) < 3
        for kpi, value in expected.items():
            row = at.loc[(kpi, feature_set, group)]
            assert row["n"] == len(part) and row["suppressed"] == small
            assert (pd.isna(row["value"]) and small) or row["value"] == pytest.approx(
                value, rel=1e-9, abs=1e-9
            ), (kpi, feature_set, group)


@pytest.mark.parametrize(
    "sql",
    [
        "median(amount)",
        "count(DISTINCT region)",
        "sum(amount) FILTER (WHERE decision = 1)",
        "sum(amount) OVER ()",
        "max(amount, 3)",
        "fsum(amount)",
        "amount",
        "sum(avg(amount))",
        "avg(amount) + (SELECT 1)",
    ],
)
def test_kpis_that_do_not_decompose_are_taken_over_the_rows(sql):
    """Only count, count_if, sum, avg, min and max decompose into partials per cell, and only when
    nothing outside them reads a row; the KPIs of the spec in the test above do."""
    spec = AssessmentSpec.model_validate(KPI_SPEC)
    decomposed = _decompose(spec.analytics.kpis)
    assert [k.name for k in decomposed.over_rows] == ["median_amount"]
    assert decomposed.partials["_p1"] == "CAST(sum(decision) AS DOUBLE)"
    assert decomposed.over_cells["large_per_mean"] == (
        "COALESCE(SUM(_p8), 0) / (SUM(_p7) / SUM(_p4))"
    )
    kpi = spec.analytics.kpis[0].model_copy(update={"sql": sql})
    assert not _decompose([kpi]).over_cells


def test_a_nan_in_the_data_gives_the_kpi_sql_gives_on_the_rows():
    """A NaN (not NULL) in a column a decomposed KPI sums makes that KPI NaN in SQL, reported NULL;
    its cell's partial cannot say NaN from NULL, so such a KPI is taken over the rows."""
    spec = AssessmentSpec.model_validate(KPI_SPEC)
    rows = pd.DataFrame(
        {
            "region": ["north"] * 4 + ["south"] * 4,
            "band": [1] * 8,
            "outcome": [1, 0] * 4,
            "decision": [1, 1, 0, 0] * 2,
            "amount": [10.0, float("nan"), 30.0, 40.0, 5.0, 6.0, None, 8.0],
            "w": 1.0,
            "day": dt.date(2026, 3, 2),
        }
    )
    with duckdb.connect() as conn:
        conn.register("rows", rows)
        conn.execute(
            "CREATE TABLE cases AS SELECT * REPLACE "
            "(CASE WHEN amount IS NULL AND region = 'north' THEN 'NaN'::DOUBLE ELSE amount END "
            "AS amount) FROM rows"
        )
        got = compute_kpis(conn, "cases", spec, "2026-03-02").set_index(
            ["kpi", "feature_set", "group_key"]
        )["value"]
    assert got[("approval_rate", "region", "north")] == 0.5  # no NaN read: over the cells
    for kpi in ("approved_amount", "amount_range", "large_per_mean"):  # they read the NaN
        assert pd.isna(got[(kpi, "region", "north")]) and pd.isna(got[(kpi, "overall", "overall")])
    assert got[("approved_amount", "region", "south")] == 11.0  # a NULL is skipped, not a NaN
    assert got[("amount_range", "region", "south")] == 3.0
    assert got[("large_per_mean", "region", "south")] == 0.0


def test_small_groups_are_suppressed_not_dropped(project: ProjectPaths):
    got = _kpis(project, min_group_size=5)
    regional = got[got.feature_set == "region"]
    assert len(regional) == 16 and regional.suppressed.all() and regional.value.isna().all()
    assert regional.reason.str.contains("below the minimum group size 5").all()
    assert got[got.feature_set == "overall"].value.notna().all()


def _drift(current: pd.DataFrame, reference: pd.DataFrame, column: DriftColumn, bins: int = 10):
    with duckdb.connect() as conn:
        conn.register("cur", current)
        conn.register("ref", reference)
        return {
            r["statistic"]: r["value"] for r in column_drift(conn, "cur", "ref", column, bins=bins)
        }


def test_numeric_drift_equals_scipy_and_a_hand_psi():
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 5000).round(2)})
    current = pd.DataFrame({"x": rng.normal(0.3, 1.2, 3000).round(2)})
    got = _drift(current, reference, DriftColumn("x", "feature", numeric=True))
    ks = stats.ks_2samp(current.x, reference.x, method="asymp")
    assert got["ks"] == pytest.approx(ks.statistic, abs=1e-12)
    assert got["ks_pvalue"] == pytest.approx(ks.pvalue, rel=1e-6)
    edges = np.unique(np.quantile(reference.x, np.arange(1, 10) / 10))
    p = np.bincount(np.searchsorted(edges, current.x, side="left"), minlength=len(edges) + 1)
    q = np.bincount(np.searchsorted(edges, reference.x, side="left"), minlength=len(edges) + 1)
    p, q = np.maximum(p / p.sum(), 1e-4), np.maximum(q / q.sum(), 1e-4)
    assert got["psi"] == pytest.approx(np.sum((p - q) * np.log(p / q)), abs=1e-12)
    same = _drift(reference, reference, DriftColumn("x", "feature", numeric=True))
    assert same["psi"] == pytest.approx(0, abs=1e-12) and same["ks"] == 0


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    sizes=st.tuples(st.integers(1, 400), st.integers(1, 400)),
    decimals=st.integers(0, 3),
    nulls=st.booleans(),
)
def test_numeric_drift_in_memory_equals_scipy_and_the_sql_run_on_spark(
    seed, sizes, decimals, nulls
):
    """On DuckDB a numeric column is binned and its KS statistic taken from its sorted values; both
    equal the SQL histogram and windowed KS that Spark runs, and KS equals scipy's: ties within and
    across the samples, NULLs, either sample the smaller."""
    rng = np.random.default_rng(seed)
    samples = []
    for size, (mean, sd) in zip(sizes, ((0.2, 1), (0, 1.3)), strict=True):
        values = pd.array(rng.normal(mean, sd, size).round(decimals), dtype="Float64")
        if nulls:
            values[rng.random(size) < 0.1] = pd.NA
        samples.append(pd.DataFrame({"x": values}))
    current, reference = samples
    column = DriftColumn("x", "feature", numeric=True)
    with duckdb.connect() as conn:
        conn.register("cur", current)
        conn.register("ref", reference)
        ours = column_drift(conn, "cur", "ref", column, bins=5)
        on_spark = column_drift(_NotDuckDB(conn), "cur", "ref", column, bins=5)
    assert [r["statistic"] for r in ours] == [r["statistic"] for r in on_spark]
    for mine, theirs in zip(ours, on_spark, strict=True):
        assert mine["n"] == theirs["n"] and mine["n_reference"] == theirs["n_reference"]
        assert mine["value"] == pytest.approx(theirs["value"], abs=1e-12, nan_ok=True)
    got = {r["statistic"]: r["value"] for r in ours}
    cur, ref = current["x"].dropna(), reference["x"].dropna()
    if len(cur) and len(ref):
        assert got["ks"] == pytest.approx(stats.ks_2samp(cur, ref).statistic, abs=1e-12)


class _NotDuckDB:
    """A DuckDB connection seen as the drift code sees the Spark engine: only ``execute``."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.execute = conn.execute


def test_categorical_drift_equals_scipy():
    reference = pd.DataFrame({"g": ["a"] * 500 + ["b"] * 300 + ["c"] * 200})
    current = pd.DataFrame({"g": ["a"] * 200 + ["b"] * 300 + ["c"] * 400 + [None] * 100})
    got = _drift(current, reference, DriftColumn("g", "group", numeric=False))
    observed = np.array([[200, 300, 400, 100], [500, 300, 200, 0]])
    chi2, p_value, _, _ = stats.chi2_contingency(observed, correction=False)
    assert got["chi_square"] == pytest.approx(chi2, rel=1e-12)
    assert got["chi_square_pvalue"] == pytest.approx(p_value, rel=1e-9, abs=1e-300)
    assert got["js_distance"] == pytest.approx(jensenshannon(observed[0], observed[1], base=2))
    assert got["psi"] == pytest.approx(psi(observed[0].astype(float), observed[1].astype(float)))
    hand = sum(
        (a - b) * np.log(a / b)
        for a, b in zip([0.2, 0.3, 0.4, 0.1], [0.5, 0.3, 0.2, 1e-4], strict=True)
    )
    assert got["psi"] == pytest.approx(hand, rel=1e-12)


def test_register_entries_measure_kpis_and_drift(demo_paths: ProjectPaths):
    defs = build_definitions(demo_paths)
    with dg.instance_for_test() as instance:
        assert (
            defs.resolve_job_def(assessment_job_name("credit_scoring"))
            .execute_in_process(partition_key=DAYS[0].isoformat(), instance=instance)
            .success
        )
    with duckdb.connect(str(demo_paths.database), read_only=True) as conn:
        entries = dict(
            conn.execute(
                "SELECT entry_id, value FROM impact.register_entries WHERE entry_id IN ('lender_net_benefit', 'score_drift')"
            ).fetchall()
        )
        net = conn.execute(
            "SELECT value FROM impact.kpis WHERE kpi = 'net_benefit_per_decision' AND feature_set = 'overall'"
        ).fetchall()[0][0]
        score_psi = conn.execute(
            "SELECT value FROM impact.drift WHERE column_name = 'score' AND statistic = 'psi'"
        ).fetchall()[0][0]
        roles = dict(conn.execute("SELECT DISTINCT column_name, role FROM impact.drift").fetchall())
    assert entries == {"lender_net_benefit": net, "score_drift": score_psi}
    assert roles["repaid"] == "label" and roles["sex"] == "group" and roles["purpose"] == "feature"
    assert 0 <= score_psi < 0.1  # the same simulator as the training snapshot: no drift


@pytest.mark.parametrize(
    ("measure", "message"),
    [
        ({"source": "kpi", "kpi": "profit"}, "no KPI 'profit'"),
        (
            {"source": "kpi", "kpi": "approval_rate", "feature_set": "sex", "group": "other"},
            "group",
        ),
        ({"source": "drift", "column": "loaded_at"}, "drift is not computed for 'loaded_at'"),
    ],
)
def test_a_register_entry_on_an_unknown_result_is_rejected(tmp_path: Path, measure, message):
    def edit(spec: dict) -> None:
        spec["register"][0]["measure"] = measure

    with pytest.raises(SpecError) as info:
        load_assessment(
            spec_variant(tmp_path, edit), ProjectPaths.for_project(REPO, state_dir=tmp_path)
        )
    assert "register.0.measure" in str(info.value) and message in str(info.value)


SCENARIOS = """
  scenarios:
    - {name: sweep, kind: threshold_sweep, thresholds: [0.5, 0.65]}
    - {name: more_south, kind: group_mix, feature: region, weights: {south: 3}}
    - {name: downturn, kind: base_rate, factor: 0.5}
"""


def _scenarios(project: ProjectPaths) -> pd.DataFrame:
    vendor_project(project, ROWS, quality=ANALYTICS + SCENARIOS, sql=SQL)
    defs = build_definitions(project)
    with dg.instance_for_test() as instance:
        assert (
            defs.resolve_job_def(assessment_job_name("vendor_scores"))
            .execute_in_process(partition_key="2026-03-02", instance=instance)
            .success
        )
    with duckdb.connect(str(project.database), read_only=True) as conn:
        return conn.execute("SELECT * FROM impact.scenarios").df()


def test_scenarios_against_hand_computations(project: ProjectPaths):
    got = (
        _scenarios(project)
        .set_index(["scenario", "variant", "metric", "feature_set", "group_key"])
        .sort_index()
    )
    rows = pd.read_csv(pd.io.common.StringIO(ROWS))
    rows = rows[rows.day == "2026-03-02"].assign(decision=lambda f: (f.score >= 0.5).astype(int))
    # The model's own threshold reproduces the baseline exactly, for every result.
    same = got.loc["sweep", "0.5"]
    assert len(same) > 10
    assert same.value.fillna(-1).to_numpy() == pytest.approx(
        same.baseline.fillna(-1).to_numpy(), rel=1e-12
    )
    # A higher threshold: decisions re-made on the score.
    high = rows.assign(decision=(rows.score >= 0.65).astype(int))
    assert got.loc[
        ("sweep", "0.65", "selection_rate", "overall", "overall"), "value"
    ] == pytest.approx(high.decision.mean())
    assert got.loc[
        ("sweep", "0.65", "approved_amount", "overall", "overall"), "value"
    ] == pytest.approx(high.amount[high.decision == 1].sum())
    rates = high.groupby("region").decision.mean()
    assert got.loc[
        ("sweep", "0.65", "demographic_parity_ratio", "region", "overall"), "value"
    ] == pytest.approx(rates.min() / rates.max())
    # Three times as many southern applicants: weighted selection rate and cost-benefit.
    w = np.where(rows.region == "south", 3.0, 1.0)
    w = w / w.mean()
    assert got.loc[
        ("more_south", "", "selection_rate", "overall", "overall"), "value"
    ] == pytest.approx(np.sum(w * rows.decision) / w.sum())
    fn = (rows.decision == 0) & (rows.outcome == 1)
    assert got.loc[("more_south", "", "value_fn", "overall", "overall"), "value"] == pytest.approx(
        -np.sum(w[fn])
    )
    assert (
        "more_south",
        "",
        "approval_rate",
        "overall",
        "overall",
    ) not in got.index  # no weighted form
    # A downturn halving the base rate: positives weigh 0.5, negatives make up the rest.
    p = rows.outcome.mean()
    w = np.where(rows.outcome == 1, 0.5, (1 - 0.5 * p) / (1 - p))
    assert w.sum() == pytest.approx(len(rows)) and np.sum(
        w * rows.outcome
    ) / w.sum() == pytest.approx(p / 2)
    tp = (rows.decision == 1) & (rows.outcome == 1)
    fp = (rows.decision == 1) & (rows.outcome == 0)
    net = (
        0.1 * np.sum(w[tp] * rows.amount[tp])
        - 0.5 * np.sum(w[fp] * rows.amount[fp])
        - np.sum(w[fn])
    )
    assert got.loc[("downturn", "", "net_benefit", "overall", "overall"), "value"] == pytest.approx(
        net
    )


def test_a_feature_shift_of_nothing_reproduces_the_baseline(
    demo_paths: ProjectPaths, tmp_path: Path
):
    def edit(spec: dict) -> None:
        spec["analytics"]["scenarios"] += [
            {"name": "same", "kind": "feature_shift", "column": "credit_amount", "multiply": 1.0},
            {"name": "dearer", "kind": "feature_shift", "column": "credit_amount", "multiply": 1.5},
        ]

    variant = spec_variant(tmp_path, edit)
    paths = ProjectPaths(
        project_dir=REPO,
        assessments_dir=variant.parent,
        sql_dir=REPO / "dbt_like_sql",
        state_dir=demo_paths.state_dir,
    )
    defs = build_definitions(paths)
    with dg.instance_for_test() as instance:
        assert (
            defs.resolve_job_def(assessment_job_name("credit_scoring"))
            .execute_in_process(partition_key=DAYS[0].isoformat(), instance=instance)
            .success
        )
    with duckdb.connect(str(paths.database), read_only=True) as conn:
        got = conn.execute(
            "SELECT scenario, metric, feature_set, group_key, value, baseline FROM impact.scenarios"
        ).df()
    same = got[got.scenario == "same"]
    # equal up to the order DuckDB's parallel aggregation adds in
    assert len(same) > 50
    assert same.value.fillna(-1).to_numpy() == pytest.approx(
        same.baseline.fillna(-1).to_numpy(), rel=1e-9
    )
    dearer = got[
        (got.scenario == "dearer") & (got.metric == "selection_rate") & (got.group_key == "overall")
    ]
    assert (dearer.value != dearer.baseline).all()


def test_a_feature_shift_rescored_by_a_model_without_a_sql_form_equals_its_predictions(
    demo_paths: ProjectPaths, tmp_path: Path
):
    """A model other than the scorecard re-scores the shifted rows in Python batches (a temp table)."""
    variant = spec_variant(
        tmp_path,
        lambda spec: spec["analytics"]["scenarios"].append(
            {"name": "dearer", "kind": "feature_shift", "column": "credit_amount", "multiply": 1.5}
        ),
    )
    paths = ProjectPaths(
        project_dir=REPO,
        assessments_dir=variant.parent,
        sql_dir=REPO / "dbt_like_sql",
        state_dir=demo_paths.state_dir,
    )
    assessment = load_assessment(variant, paths)
    registry = assessment.registry
    first = registry.latest()
    training = pd.read_parquet(first.path / "reference.parquet")
    features = [  # the numeric ones: a forest needs no encoder for them
        f for f in first.metadata["features"] if pd.api.types.is_numeric_dtype(training[f])
    ]
    assert "credit_amount" in features and len(features) >= 3
    forest = RandomForestClassifier(n_estimators=5, max_depth=6, random_state=0).fit(
        training[features], training["score"] >= 0.5
    )
    assert linear_logit_sql(forest, features) is None  # no SQL form: scored in Python
    registry.register(forest, {**first.metadata, "features": features})
    day = DAYS[0].isoformat()
    with dg.instance_for_test() as instance:
        assess(paths, instance, [day])
    with duckdb.connect(str(paths.database), read_only=True) as conn:
        rows = conn.execute(
            f"SELECT * FROM credit_scoring.stg_applications WHERE CAST(application_date AS DATE) = '{day}'"
        ).df()
        got = (
            conn.execute(
                "SELECT metric, value, baseline FROM impact.scenarios "
                "WHERE scenario = 'dearer' AND feature_set = 'overall' AND group_key = 'overall'"
            )
            .df()
            .set_index("metric")
        )
    shifted = rows[features].assign(credit_amount=rows["credit_amount"] * 1.5)
    for frame, column in ((rows[features], "baseline"), (shifted, "value")):
        expected = np.mean(forest.predict_proba(frame)[:, 1] >= 0.5)
        assert got.loc["selection_rate", column] == pytest.approx(expected, rel=1e-12)
    assert got.loc["selection_rate", "value"] != got.loc["selection_rate", "baseline"]


class _ThresholdOnA:
    """A known model: the probability is feature ``a`` itself; ``b`` plays no part."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        p = frame["a"].to_numpy(dtype=float)
        return np.column_stack([1 - p, p])


def test_sensitivity_ranks_the_feature_that_carries_the_gap():
    rng = np.random.default_rng(5)
    n = 4000
    group = np.where(rng.random(n) < 0.5, "x", "y")
    a = np.clip(rng.normal(np.where(group == "x", 0.65, 0.45), 0.1), 0, 1)
    frame = pd.DataFrame({"a": a, "b": rng.random(n)})
    positives = (rng.random(n) < a).astype(int)
    got = permutation_sensitivity(
        frame,
        _ThresholdOnA(),
        ["a", "b"],
        positives=positives,
        groups=pd.Series(group),
        threshold=0.5,
        metric="demographic_parity_ratio",
        min_group_size=30,
        repeats=4,
        seed=1,
    ).set_index(["feature", "metric"])
    assert (
        got.loc[("b", "disparity"), "mean_change"] == 0
        and got.loc[("b", "disparity"), "std_change"] == 0
    )
    assert got.loc[("b", "accuracy"), "mean_change"] == 0
    assert got.loc[("a", "disparity"), "mean_change"] > 0.3  # shuffling a closes the gap
    assert got.loc[("a", "disparity"), "rank"] == 1 and got.loc[("b", "disparity"), "rank"] == 2
    decisions = (a >= 0.5).astype(int)
    ratio, accuracy = disparity_and_accuracy(
        decisions, positives, pd.Series(group), metric="demographic_parity_ratio", min_group_size=30
    )
    assert got.loc[("a", "disparity"), "baseline"] == ratio
    assert ratio == pytest.approx(
        demographic_parity_ratio(positives, decisions, sensitive_features=group)
    )
    assert accuracy == pytest.approx(np.mean(decisions == positives))
    difference, _ = disparity_and_accuracy(
        decisions,
        positives,
        pd.Series(group),
        metric="demographic_parity_difference",
        min_group_size=30,
    )
    assert difference == pytest.approx(
        demographic_parity_difference(positives, decisions, sensitive_features=group)
    )
    # a group below the minimum size (none approved) and rows in no group are left out of the
    # disparity, not of the accuracy
    mixed = pd.Series(group, dtype=object)
    mixed[:20], mixed[20:25] = None, "z"
    decided = decisions.copy()
    decided[20:25] = 0
    kept = np.arange(n) >= 25
    ratio, accuracy = disparity_and_accuracy(
        decided, positives, mixed, metric="demographic_parity_ratio", min_group_size=30
    )
    assert ratio == pytest.approx(
        demographic_parity_ratio(positives[kept], decided[kept], sensitive_features=group[kept])
    )
    assert accuracy == np.mean(decided == positives)


def test_the_sensitivity_sample_cut_by_hash_is_the_sample_of_the_whole_sort():
    """On DuckDB the seeded sample is sorted from the rows below a hash cut; it is the same rows as
    sorting them all, and all of them are sorted when too few pass the cut."""
    with duckdb.connect() as conn:
        conn.execute("CREATE TABLE cases AS SELECT i AS id, i % 7 AS day FROM range(30000) t(i)")
        relation = "(SELECT * FROM cases WHERE day < ?)"

        def ids(query: str, params: list) -> list[int]:
            return sorted(r[0] for r in conn.execute(f"SELECT id FROM {query}", params).fetchall())

        whole = f"(SELECT * FROM {relation} ORDER BY hash(id, 3) LIMIT 1000)"
        sample, params = seeded_sample(conn, relation, [6], "id", seed=3, rows=1000)
        assert "WHERE hash" in sample and ids(sample, params) == ids(whole, [6])
        assert len(ids(sample, params)) == 1000
        everything = seeded_sample(conn, relation, [6], "id", seed=3, rows=30000)
        assert "WHERE hash" not in everything[0] and len(ids(*everything)) == 30000 * 6 // 7 + 1
        # every row one id, its hash above the cut: nothing passes, so the whole sort is taken
        high = next(
            i
            for (i, h) in conn.execute("SELECT i, hash(i, 3) FROM range(100) t(i)").fetchall()
            if h > 2**63
        )
        conn.execute(f"UPDATE cases SET id = {high}")
        sample, params = seeded_sample(conn, relation, [6], "id", seed=3, rows=1000)
        assert "WHERE hash" not in sample and ids(sample, params) == [high] * 1000


def test_register_entry_on_a_sensitivity_result(demo_paths: ProjectPaths):
    with dg.instance_for_test() as instance:
        (result,) = assess(demo_paths, instance, DAYS[:1])
        messages = [e.user_message for e in instance.all_logs(result.run_id)]
    # the long steps say how far along they are in the run's log
    assert "feature 1/15 (checking_status): 5 permutations" in messages
    assert "feature 15/15 (dependants): 5 permutations" in messages
    assert "scenario 4/4 (recession, base_rate)" in messages
    with duckdb.connect(str(demo_paths.database), read_only=True) as conn:
        entry = conn.execute(
            "SELECT value FROM impact.register_entries WHERE entry_id = 'sex_gap_through_credit_history'"
        ).fetchall()[0][0]
        result = conn.execute(
            "SELECT abs_mean_change, repeats FROM impact.sensitivity WHERE feature = 'credit_history' AND metric = 'disparity'"
        ).fetchall()[0]
        features = conn.execute(
            "SELECT count(DISTINCT feature) FROM impact.sensitivity"
        ).fetchall()[0][0]
    assert entry == result[0] and result[1] == 5 and features == 15


def test_did_covers_a_planted_effect_in_at_least_93_percent_of_datasets():
    rng = np.random.default_rng(2026)
    estimates = [did_estimate(did_cells(rng, effect=0.03)) for _ in range(400)]
    covered = np.mean([e.ci_low <= 0.03 <= e.ci_high for e in estimates])
    assert covered >= 0.93
    assert abs(np.mean([e.estimate for e in estimates]) - 0.03) < 0.003


def test_did_reports_a_failed_pre_trend():
    estimate = did_estimate(did_cells(np.random.default_rng(7), effect=0.03, trend=0.005))
    assert estimate.pre_trend_ok is False and estimate.pre_trend_p < 0.05
    assert estimate.value is None and estimate.estimate is not None
    assert estimate.reason.startswith("pre-trend check failed")


def test_the_pre_trend_check_keeps_its_size_on_a_short_pre_period():
    rng = np.random.default_rng(11)
    estimates = [
        did_estimate(did_cells(rng, effect=0.03, pre_days=4, post_days=7)) for _ in range(400)
    ]
    assert np.mean([not e.pre_trend_ok for e in estimates]) <= 0.08


def test_a_few_pre_period_days_near_a_line_are_not_a_trend():
    # the demo's repayment rates one week: gaps of -0.089, -0.098, -0.105, -0.116 on 714 and 2,300
    # rows a day, a slope of -0.009 per day whose sampling error is about 0.009 (errors clustered on
    # the 4 days called it p = 0.0001)
    treated = (0.626, 0.620, 0.606, 0.599, 0.727, 0.722)
    control = (0.715, 0.717, 0.711, 0.715, 0.713, 0.718)
    rows = [
        {"day": d, "treated": g, "post": int(d >= 4), "mean": m, "var": m * (1 - m), "n": n}
        for d in range(6)
        for g, m, n in ((1, treated[d], 714), (0, control[d], 2300))
    ]
    estimate = did_estimate(pd.DataFrame(rows))
    # by hand: equal rows every day, so every gap has the same sampling variance (each segment's
    # variance averaged over the 4 days, over its rows), the slope is the OLS slope, and the gaps sit
    # so close to their line that no spread beyond sampling is estimated (Q < days - 2)
    gaps = np.subtract(treated[:4], control[:4])
    variance = (
        np.mean([m * (1 - m) for m in treated[:4]]) / 714
        + np.mean([m * (1 - m) for m in control[:4]]) / 2300
    )
    slope, intercept = np.polyfit(np.arange(4), gaps, 1)
    assert np.sum((gaps - intercept - slope * np.arange(4)) ** 2) / variance < 2
    expected_p = 2 * stats.norm.sf(abs(slope) / np.sqrt(variance / 5))  # 5: sum of (day - 1.5)^2
    assert estimate.pre_trend_slope == pytest.approx(slope, rel=1e-9)
    assert estimate.pre_trend_p == pytest.approx(expected_p, rel=1e-9)
    assert 0.2 < estimate.pre_trend_p < 0.5 and estimate.pre_trend_ok
    gain = (
        np.mean(treated[4:]) - np.mean(treated[:4]) - (np.mean(control[4:]) - np.mean(control[:4]))
    )
    assert estimate.value == pytest.approx(gain)


CAUSAL = """
  causal:
    - name: rollout_north
      outcome: CAST(outcome AS DOUBLE)
      treated: region = 'north'
      rollout: "2026-03-08"
      pre_days: 6
      post_days: 6
"""


def test_a_rollout_effect_through_the_assessment_and_the_register(project: ProjectPaths):
    rng = np.random.default_rng(3)
    days = pd.date_range("2026-03-02", "2026-03-13").date
    lines, i = ["id,day,region,outcome,score,loaded_at,amount"], 0
    for day in days:
        for region in ("north", "south"):
            p = 0.5 + (
                0.2 if region == "north" and day >= pd.Timestamp("2026-03-08").date() else 0.0
            )
            for _ in range(150):
                i += 1
                lines.append(
                    f"{i},{day},{region},{int(rng.random() < p)},{rng.random():.3f},{day + pd.Timedelta(days=1)} 01:00,100"
                )
    entry = """
  - id: rollout_effect
    outcome: The rollout raises good outcomes in the north.
    stakeholder: applicants
    impact: benefit
    measure: {source: causal, estimate: rollout_north}
    thresholds: {direction: higher_is_better, breach: 0.1}
    owner: risk@lender.example
"""
    vendor_project(project, "\n".join(lines) + "\n", quality=ANALYTICS + CAUSAL, sql=SQL)
    spec = project.assessments_dir / "vendor.yaml"
    owner = "    owner: risk@lender.example\n"  # the end of the register's only entry
    spec.write_text(spec.read_text().replace(owner, owner + entry.lstrip("\n"), 1))
    defs = build_definitions(project)
    job = defs.resolve_job_def(assessment_job_name("vendor_scores"))
    scored = dg.AssetKey(["vendor_scores", "vendor", "vendor_decisions"])
    with dg.instance_for_test() as instance:
        for day in days[:-1]:  # the history the window needs: the scored rows of each day
            assert job.execute_in_process(
                partition_key=str(day), instance=instance, asset_selection=[scored]
            ).success
        for day in ("2026-03-05", str(days[-1])):
            assert job.execute_in_process(partition_key=day, instance=instance).success
    with duckdb.connect(str(project.database), read_only=True) as conn:
        got = (
            conn.execute("SELECT * FROM impact.causal_estimates WHERE partition_key = '2026-03-13'")
            .df()
            .iloc[0]
        )
        before = conn.execute(
            "SELECT value, reason FROM impact.causal_estimates WHERE partition_key = '2026-03-05'"
        ).fetchall()[0]
        value, low, high, status = conn.execute(
            "SELECT value, ci_low, ci_high, status FROM impact.register_entries e JOIN impact.register_snapshots s USING (snapshot_id) "
            "WHERE entry_id = 'rollout_effect' AND partition_key = '2026-03-13'"
        ).fetchall()[0]
    frame = pd.read_csv(pd.io.common.StringIO("\n".join(lines)))
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    cells = (
        frame.assign(
            treated=(frame.region == "north").astype(int),
            post=(frame.day >= pd.Timestamp("2026-03-08").date()).astype(int),
        )
        .groupby(["day", "treated", "post"], as_index=False)
        .agg(mean=("outcome", "mean"), var=("outcome", "var"), n=("outcome", "size"))
    )
    expected = did_estimate(cells)
    assert got.estimate == pytest.approx(expected.estimate, abs=1e-12)
    assert (got.ci_low, got.ci_high) == pytest.approx(
        (expected.ci_low, expected.ci_high), abs=1e-12
    )
    assert got.ci_low <= 0.2 <= got.ci_high and got.days_pre == 6 and got.days_post == 6
    assert before == (None, "partition 2026-03-05 is before the rollout on 2026-03-08")
    assert (value, low, high) == pytest.approx(
        (got.value, got.ci_low, got.ci_high)
    ) and status == "pass"


def test_the_simulator_plants_the_rollout_it_declares():
    rollout = Rollout("purpose", "car (new)", dt.date(2026, 3, 5), flip_to_good=0.3)
    before = simulate_batch(dt.date(2026, 3, 4), rows=40_000, seed=1, rollout=rollout)
    after = simulate_batch(dt.date(2026, 3, 5), rows=40_000, seed=1, rollout=rollout)
    assert set(before.offer_version) == {1}
    treated = after.purpose == "car (new)"
    assert (after.offer_version[treated] == 2).all() and (after.offer_version[~treated] == 1).all()
    plain = simulate_batch(dt.date(2026, 3, 5), rows=40_000, seed=1)
    rise = (after.creditability[treated] == "good").mean() - (
        plain.creditability[treated] == "good"
    ).mean()
    assert rise == pytest.approx(rollout.planted_effect(), abs=0.01)
    assert rollout.planted_effect() == pytest.approx(0.3 * 89 / 234)

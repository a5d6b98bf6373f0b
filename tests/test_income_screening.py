"""The second domain: income screening on UCI Adult, from its YAML and SQL alone, checked against
fairlearn on the scored rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pytest
from fairlearn.metrics import MetricFrame, count, selection_rate, true_positive_rate

from impact_assets import discover_assessments
from impact_assets.cli import simulate_days, train_version
from impact_assets.datasets import DATASETS, simulate_batch

from .conftest import REPO, alone, assess

INCOME_SPEC = REPO / "assessments" / "income_screening.yaml"


def test_the_income_screening_runs_from_yaml_and_sql_alone(tmp_path: Path):
    paths = alone(INCOME_SPEC, tmp_path / "state", INCOME_SPEC.name)
    (assessment,) = discover_assessments(paths)
    day = dt.date(2026, 3, 2)
    simulate_days(assessment, [day])
    assert train_version(assessment) == "1"
    with dg.instance_for_test() as instance:
        assess(paths, instance, [day], "income_screening")
    with duckdb.connect(str(paths.database), read_only=True) as conn:
        rows = conn.execute("SELECT * FROM income_screening.scored_people").df()
        entries = (
            conn.execute("SELECT entry_id, value, status, n FROM impact.register_entries")
            .df()
            .set_index("entry_id")
        )
    assert len(entries) == 7 and len(rows) > 2500

    def by(feature: str, metric) -> MetricFrame:
        return MetricFrame(
            metrics=metric,
            y_true=rows["high_income"],
            y_pred=rows["offered"],
            sensitive_features=rows[feature],
        )

    assert entries.loc["offer_parity_sex", "value"] == pytest.approx(
        by("sex", selection_rate).ratio(), abs=1e-12
    )
    assert entries.loc["qualified_women_reached", "value"] == pytest.approx(
        by("sex", true_positive_rate).difference(), abs=1e-12
    )
    # race: groups under the minimum size (50) are left out of the ratio, not counted as equal
    race = MetricFrame(
        metrics={"rate": selection_rate, "n": count},
        y_true=rows["high_income"],
        y_pred=rows["offered"],
        sensitive_features=rows["race"],
    ).by_group
    shown = race[race["n"] >= 50]["rate"]
    assert len(shown) < len(race)  # the demo's small groups are suppressed
    assert entries.loc["offer_parity_race", "value"] == pytest.approx(
        shown.min() / shown.max(), abs=1e-12
    )
    assert entries.loc["qualified_reached", "value"] == pytest.approx(
        true_positive_rate(rows["high_income"], rows["offered"]), abs=1e-12
    )


def test_the_simulator_resamples_adult_and_drifts_to_the_young():
    base = DATASETS["adult"].load()
    assert len(base) == 32_561 and set(base["income"]) == {">50K", "<=50K"}
    day = dt.date(2026, 3, 2)
    plain = simulate_batch(day, rows=40_000, seed=1, dataset="adult")
    drifted = simulate_batch(day, rows=40_000, seed=1, dataset="adult", drift_from=day)
    assert set(plain.columns) >= {"application_id", "application_date", "loaded_at", *base.columns}
    # the known share under 30: each record's chance of ending under 30 after the uniform age shift
    # of -2..+2 years, averaged with weight 1 (plain) or 3 for people under 30 (drifted)
    ages = base["age"].to_numpy()
    under = np.mean([np.clip(ages + shift, 17, 90) < 30 for shift in range(-2, 3)], axis=0)
    weights = np.where(ages < 30, 3.0, 1.0)
    assert float((plain["age"] < 30).mean()) == pytest.approx(under.mean(), abs=0.01)
    assert float((drifted["age"] < 30).mean()) == pytest.approx(
        np.average(under, weights=weights), abs=0.01
    )
    # 3 % of outcomes flip, so the high-income share moves toward 1/2 by 3 % of the gap
    share = float((base["income"] == ">50K").mean())
    assert float((plain["income"] == ">50K").mean()) == pytest.approx(
        share + 0.03 * (1 - 2 * share), abs=0.01
    )
    assert np.all(plain["hours_per_week"].between(1, 99))

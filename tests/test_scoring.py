"""Scoring: the scorecard compiled to SQL equals scikit-learn's predict_proba; other models go through
Python batches and equal it exactly."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder

from impact_assets.analytics import permutation_sensitivity
from impact_assets.modeling import (
    SCORED_ID,
    SCORED_SCORE,
    predict_scores,
    score_partition,
    train_classifier,
)
from impact_assets.modeling._linear_sql import linear_logit_sql, linear_terms_sql


def _rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "income": rng.lognormal(10, 0.5, n),
            "debt": rng.uniform(0, 2, n),
            "constant": np.full(n, 3.0),  # zero variance: StandardScaler keeps scale 1
            "channel": rng.choice(["web", "branch", "phone"], n),
            "region": rng.choice(["north", "south", "l'île; --"], n),
        }
    )
    logit = frame["income"] / 20000 - frame["debt"] + (frame["channel"] == "web")
    frame["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


FEATURES = ["income", "debt", "constant", "channel", "region"]


@pytest.fixture(scope="module")
def conn() -> duckdb.DuckDBPyConnection:
    scored = _rows(5_000, 2)
    scored.loc[:10, "channel"] = "kiosk"  # a category the model never saw
    connection = duckdb.connect()
    connection.register("scored_frame", scored)
    connection.execute("CREATE TABLE scored AS SELECT * FROM scored_frame")
    return connection


def test_the_scorecard_in_sql_equals_predict_proba(conn):
    model, _ = train_classifier(_rows(2_000, 1), FEATURES, "y")
    assert linear_logit_sql(model, FEATURES) is not None
    got = predict_scores(conn, "SELECT * FROM scored", [], model, FEATURES, id_column="id")
    frame = conn.execute("SELECT * FROM scored ORDER BY id").df()
    expected = model.predict_proba(frame[FEATURES])[:, 1]
    scores = got.sort_values(SCORED_ID)[SCORED_SCORE].to_numpy()
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-12)
    assert ((scores >= 0.5) == (expected >= 0.5)).all()


def test_any_other_model_is_scored_in_python_batches_exactly(conn):
    training = _rows(2_000, 1)
    model = make_pipeline(
        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
        RandomForestClassifier(n_estimators=10, random_state=0),
    ).fit(training[FEATURES], training["y"])
    assert linear_logit_sql(model, FEATURES) is None
    got = predict_scores(
        conn,
        "SELECT * FROM scored WHERE id >= ?",
        [100],
        model,
        FEATURES,
        id_column="id",
        batch_rows=2048,  # three batches
    )
    frame = conn.execute("SELECT * FROM scored WHERE id >= 100 ORDER BY id").df()
    expected = model.predict_proba(frame[FEATURES])[:, 1]
    table = got.sort_values(SCORED_ID)
    assert table[SCORED_ID].tolist() == frame["id"].tolist()
    np.testing.assert_array_equal(table[SCORED_SCORE].to_numpy(), expected)


def test_a_null_numeric_feature_is_refused_as_scikit_learn_refuses_it(conn):
    model, _ = train_classifier(_rows(2_000, 1), FEATURES, "y")
    query = "SELECT id, CASE WHEN id % 1000 = 0 THEN NULL ELSE income END AS income, debt, constant, channel, region FROM scored"
    with pytest.raises(ValueError, match="5 rows have NULL in a numeric feature the model needs"):
        predict_scores(conn, query, [], model, FEATURES, id_column="id")
    frame = conn.execute(query).df()
    with pytest.raises(ValueError, match="NaN"):
        model.predict_proba(frame[FEATURES])


def test_a_scored_partition_reports_what_it_wrote(conn):
    model, _ = train_classifier(_rows(2_000, 1), FEATURES, "y")
    conn.execute("CREATE SCHEMA IF NOT EXISTS demo")
    conn.execute(
        "CREATE OR REPLACE TABLE demo.features AS SELECT *, DATE '2026-03-02' + CAST(id % 2 AS INTEGER) AS day FROM scored"
    )
    summary = score_partition(
        conn,
        model,
        model_version="7",
        trained_features=FEATURES,
        schema="demo",
        features_table="features",
        id_column="id",
        features=FEATURES,
        partition_column="day",
        partition_key="2026-03-03",
        decision_threshold=0.5,
    )
    frame = conn.execute("SELECT * FROM scored WHERE id % 2 = 1 ORDER BY id").df()
    expected = model.predict_proba(frame[FEATURES])[:, 1]
    written = conn.execute(
        "SELECT id, score, decision, model_version FROM demo.predictions ORDER BY id"
    ).df()
    assert written["id"].tolist() == frame["id"].tolist()
    np.testing.assert_allclose(written["score"], expected, rtol=0, atol=1e-12)
    assert (written["decision"] == (expected >= 0.5)).all() and set(written["model_version"]) == {
        "7"
    }
    assert summary.rows == len(frame)
    assert summary.mean_score == pytest.approx(expected.mean(), abs=1e-12)
    assert summary.approval_rate == pytest.approx((expected >= 0.5).mean(), abs=1e-12)


def test_permutations_of_the_scorecards_terms_equal_rescoring_with_the_model(conn):
    """Sensitivity on the scorecard re-scores a permutation by permuting one SQL term of the log-odds;
    it gives what permuting the feature and calling predict_proba gives (same seed, same draws)."""
    model, _ = train_classifier(_rows(2_000, 1), FEATURES, "y")
    intercept, terms = linear_terms_sql(model, FEATURES, qualifier="s.")
    frame = conn.execute(
        f"SELECT s.*, {' + '.join([intercept, *terms.values()])} AS _logit, "
        + ", ".join(f'{sql} AS "_term_{c}"' for c, sql in terms.items())
        + " FROM scored AS s ORDER BY id"
    ).df()
    logit_terms = frame[["_logit", *(f"_term_{c}" for c in terms)]].rename(
        columns=lambda c: c.removeprefix("_term_")
    )
    common = dict(
        positives=frame["y"].to_numpy(),
        groups=frame["region"],
        threshold=0.5,
        metric="demographic_parity_difference",
        min_group_size=30,
        repeats=3,
        seed=4,
    )
    by_model = permutation_sensitivity(frame, model, FEATURES, **common)
    by_terms = permutation_sensitivity(frame, None, FEATURES, logit_terms=logit_terms, **common)
    pd.testing.assert_frame_equal(by_terms, by_model, check_exact=False, rtol=0, atol=1e-12)
    assert by_model.loc[by_model.metric == "accuracy", "mean_change"].abs().max() > 0.01

"""Training the demo model: a scikit-learn pipeline on the features of the project's own SQL."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

__all__ = ["fingerprint_frame", "train_classifier"]


def fingerprint_frame(frame: pd.DataFrame) -> str:
    """Order-independent content hash of a frame (the training-data fingerprint)."""
    import numpy as np
    import pandas as pd

    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest = hashlib.sha256(np.sort(hashed).tobytes())
    digest.update(",".join(map(str, frame.columns)).encode())
    return digest.hexdigest()[:16]


def train_classifier(
    frame: pd.DataFrame, features: Sequence[str], label: str, *, seed: int = 0
) -> tuple[Pipeline, dict[str, Any]]:
    """Fit a logistic-regression scorecard and measure it on a held-out quarter.

    Returns:
        The fitted pipeline and its metadata (features, validation AUC and accuracy, data fingerprint).
    """
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = list(features)
    x, y = frame[features], frame[label].astype(int)
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(x[c])]
    categorical = [c for c in features if c not in numeric]
    pipeline = Pipeline(
        [
            (
                "prepare",
                ColumnTransformer(
                    [
                        ("numeric", StandardScaler(), numeric),
                        ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
                    ]
                ),
            ),
            ("classify", LogisticRegression(max_iter=2000)),
        ]
    )
    x_train, x_valid, y_train, y_valid = train_test_split(
        x, y, test_size=0.25, random_state=seed, stratify=y
    )
    pipeline.fit(x_train, y_train)
    scores = pipeline.predict_proba(x_valid)[:, 1]
    metadata = {
        "trained_at": dt.datetime.now(dt.UTC).isoformat(),
        "features": features,
        "feature_types": {c: ("double" if c in numeric else "string") for c in features},
        "label": label,
        "training_rows": len(frame),
        "training_data_fingerprint": fingerprint_frame(frame[[*features, label]]),
        "validation": {
            "auc": float(roc_auc_score(y_valid, scores)),
            "accuracy": float(accuracy_score(y_valid, scores >= 0.5)),
        },
        "estimator": "sklearn Pipeline(StandardScaler + OneHotEncoder, LogisticRegression)",
    }
    return pipeline, metadata

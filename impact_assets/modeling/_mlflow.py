"""MLflow's model registry as the assessment's model registry (optional extra ``impact-assets[mlflow]``).

The same interface as :class:`LocalModelRegistry`: versions, the newest usable one, loading, release
statuses and promotion. Release statuses are model-version tags (``impact_assets.status``), promotion is
the registered model's ``approved`` alias, and a version's features are the ``impact_assets.features``
tag written at registration, else the input names of the model's signature. The tracking URI comes from
the spec or, when absent, MLflow's own ``MLFLOW_TRACKING_URI``; credentials stay in MLflow's own
environment variables (``MLFLOW_TRACKING_USERNAME``/``PASSWORD``/``TOKEN``) and never enter the spec.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from impact_assets.errors import ModelRegistryError
from impact_assets.modeling._registry import (
    EMPTY_REGISTRY,
    LOAD_FAILED,
    REFERENCE_FILE,
    UNKNOWN_VERSION,
    ModelVersion,
)
from impact_assets.sql import write_parquet

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MlflowModelRegistry"]

STATUS_TAG = "impact_assets.status"
FEATURES_TAG = "impact_assets.features"
APPROVED_ALIAS = "approved"
NOT_INSTALLED = "the spec uses MLflow's model registry but mlflow is not installed: pip install 'impact-assets[mlflow]'"


def _mlflow() -> Any:
    try:
        with warnings.catch_warnings():
            # MLflow's own modules warn at import (deprecated stdlib modules, a type-hint notice of
            # its pyfunc loaders); none concerns this package, so they stay out of the user's log.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            import mlflow
            import mlflow.pyfunc
            import mlflow.sklearn
    except ImportError as exc:
        raise ModelRegistryError(NOT_INSTALLED) from exc
    return mlflow


def _signature(mlflow: Any, metadata: dict[str, Any]) -> Any:
    """The model's input signature from the training metadata's feature types (numeric → double)."""
    types = metadata.get("feature_types", {})
    columns = [
        mlflow.types.ColSpec(types.get(name, "string"), name)
        for name in metadata.get("features", [])
    ]
    return mlflow.models.ModelSignature(
        inputs=mlflow.types.Schema(columns),
        outputs=mlflow.types.Schema([mlflow.types.ColSpec("long")]),
    )


class MlflowModelRegistry:
    """Versions of one registered model in an MLflow tracking server or local store."""

    def __init__(
        self,
        model_name: str,
        tracking_uri: str | None = None,
        *,
        experiment: str = "impact-assets",
        artifact_location: str | None = None,
    ) -> None:
        self.model_name = model_name
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.artifact_location = artifact_location
        self.path = Path(f"mlflow:{model_name}")  # shown in messages and metadata

    def _client(self) -> Any:
        return _mlflow().MlflowClient(tracking_uri=self.tracking_uri)

    def versions(self) -> list[str]:
        try:
            found = self._client().search_model_versions(f"name='{self.model_name}'")
        except (
            Exception
        ) as exc:  # an unreachable server or a missing model both mean "no versions here"
            if "RESOURCE_DOES_NOT_EXIST" in str(exc):
                return []
            raise ModelRegistryError(
                f"MLflow registry {self.tracking_uri or '(MLFLOW_TRACKING_URI)'} is not usable: {exc}"
            ) from exc
        return sorted((str(v.version) for v in found), key=int)

    def status(self, version: str) -> dict[str, Any]:
        tags = self._client().get_model_version(self.model_name, str(version)).tags
        return {"status": tags[STATUS_TAG]} if STATUS_TAG in tags else {}

    def latest(self, *, usable: bool = False) -> ModelVersion:
        versions = [
            v
            for v in self.versions()
            if not usable or self.status(v).get("status") != "rolled_back"
        ]
        if not versions:
            raise ModelRegistryError(
                EMPTY_REGISTRY.format(path=self.path), context={"registry": str(self.path)}
            )
        return self.get(versions[-1])

    def get(self, version: str) -> ModelVersion:
        if str(version) not in self.versions():
            raise ModelRegistryError(
                UNKNOWN_VERSION.format(version=version, path=self.path, versions=self.versions())
            )
        entry = self._client().get_model_version(self.model_name, str(version))
        features = (
            json.loads(entry.tags[FEATURES_TAG])
            if FEATURES_TAG in entry.tags
            else self._signature_features(version)
        )
        return ModelVersion(
            str(version),
            self.path,
            {"features": features, "run_id": entry.run_id, "tags": dict(entry.tags)},
        )

    def _signature_features(self, version: str) -> list[str]:
        info = _mlflow().models.get_model_info(f"models:/{self.model_name}/{version}")
        return list(info.signature.inputs.input_names()) if info.signature is not None else []

    def reference(self, version: str) -> Path | None:
        """The training snapshot of ``version``, downloaded from its run's artifacts, if it was kept."""
        entry = self.get(version)
        mlflow = _mlflow()
        target = (
            Path(tempfile.gettempdir()) / "impact_assets_mlflow" / self.model_name / str(version)
        )
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=entry.metadata["run_id"],
                artifact_path=REFERENCE_FILE,
                dst_path=str(target),
                tracking_uri=self.tracking_uri,
            )
        except Exception:  # no such artifact: the version was registered without a snapshot
            return None
        return Path(local)

    def load(self, version: str) -> tuple[Any, ModelVersion]:
        entry = self.get(version)
        mlflow = _mlflow()
        if self.tracking_uri:
            mlflow.set_tracking_uri(self.tracking_uri)
        try:
            model = mlflow.sklearn.load_model(f"models:/{self.model_name}/{version}")
        except Exception as exc:  # any deserialization failure means the artifact is unusable
            raise ModelRegistryError(
                LOAD_FAILED.format(
                    version=version, path=self.path, message=f"{type(exc).__name__}: {exc}"
                )
            ) from exc
        return model, entry

    def register(
        self, model: Any, metadata: dict[str, Any], reference: pd.DataFrame | None = None
    ) -> ModelVersion:
        mlflow = _mlflow()
        if self.tracking_uri:
            mlflow.set_tracking_uri(self.tracking_uri)
        client = self._client()
        experiment = client.get_experiment_by_name(self.experiment)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else client.create_experiment(self.experiment, artifact_location=self.artifact_location)
        )
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_params(
                {
                    "features": ",".join(metadata.get("features", [])),
                    "training_rows": metadata.get("training_rows"),
                }
            )
            mlflow.log_metrics(
                {f"validation_{k}": v for k, v in metadata.get("validation", {}).items()}
            )
            if reference is not None:
                with tempfile.TemporaryDirectory() as folder:
                    path = Path(folder) / REFERENCE_FILE
                    write_parquet(reference, path)
                    mlflow.log_artifact(str(path))
            mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name=self.model_name,
                serialization_format="cloudpickle",
                signature=_signature(mlflow, metadata),
            )
        created = [
            v
            for v in self._client().search_model_versions(f"name='{self.model_name}'")
            if v.run_id == run.info.run_id
        ]
        version = str(created[0].version)
        client.set_model_version_tag(
            self.model_name, version, FEATURES_TAG, json.dumps(metadata.get("features", []))
        )
        for key in ("training_data_fingerprint", "note"):
            if metadata.get(key):
                client.set_model_version_tag(
                    self.model_name, version, f"impact_assets.{key}", str(metadata[key])
                )
        return self.get(version)

    def mark(self, version: str, status: str, detail: dict[str, Any]) -> None:
        client = self._client()
        client.set_model_version_tag(self.model_name, str(version), STATUS_TAG, status)
        client.set_model_version_tag(
            self.model_name,
            str(version),
            "impact_assets.status_detail",
            json.dumps(detail, default=str)[:4000],
        )

    def approved(self) -> str | None:
        try:
            return str(
                self._client().get_model_version_by_alias(self.model_name, APPROVED_ALIAS).version
            )
        except Exception:  # no alias set yet
            return None

    def promote(self, version: str, detail: dict[str, Any]) -> None:
        self._client().set_registered_model_alias(self.model_name, APPROVED_ALIAS, str(version))

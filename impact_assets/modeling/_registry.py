"""A local, file-based model registry: one folder per version, artifact plus metadata.

Layout::

    <registry>/<version>/model.joblib      the fitted scikit-learn pipeline
    <registry>/<version>/metadata.json     version, trained_at, training-data fingerprint, metrics, features
    <registry>/<version>/status.json       release status set by a release decision (approved, held, rolled_back)
    <registry>/approved.json               the version promoted last

Versions are increasing integers (``1``, ``2``...), as in MLflow's registry. A version folder is
written under a temporary name and renamed into place, so a reader never sees half a version.
Artifacts are joblib pickles: load only registries you trust.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from impact_assets.errors import ModelRegistryError
from impact_assets.sql import write_parquet

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LocalModelRegistry", "ModelVersion"]
#: The training snapshot kept with each version (drift reference).
REFERENCE_FILE = "reference.parquet"

EMPTY_REGISTRY = (
    "the model registry {path} holds no model version; train one first (`impact-assets train`)"
)
UNKNOWN_VERSION = "model version {version!r} is not in the registry {path} (versions: {versions})"
LOAD_FAILED = "model version {version} in {path} could not be loaded: {message}"
UNREADABLE_RECORD = "the model registry file {path} is not readable JSON: {message}"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise ModelRegistryError(
            UNREADABLE_RECORD.format(path=path, message=exc), context={"file": str(path)}
        ) from exc


@dataclass(frozen=True)
class ModelVersion:
    """A registered version and its metadata."""

    version: str
    path: Path
    metadata: dict[str, Any]


class LocalModelRegistry:
    """Versions of one model in a folder.

    Example:
        >>> registry = LocalModelRegistry(Path(tempfile.mkdtemp()))
        >>> registry.versions()
        []
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def versions(self) -> list[str]:
        """Registered versions, oldest first."""
        if not self.path.is_dir():
            return []
        found = [
            p.name
            for p in self.path.iterdir()
            if p.is_dir() and p.name.isdigit() and (p / "metadata.json").is_file()
        ]
        return sorted(found, key=int)

    def latest(self, *, usable: bool = False) -> ModelVersion:
        """The newest version; with ``usable``, the newest that has not been rolled back."""
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

    def status(self, version: str) -> dict[str, Any]:
        """Release status of a version (``{}`` until a release decision marks it)."""
        path = self.path / str(version) / "status.json"
        return _read_json(path) if path.is_file() else {}

    def mark(self, version: str, status: str, detail: dict[str, Any]) -> None:
        """Record a release status (``approved``, ``held``, ``rolled_back``) on a version, atomically."""
        self.get(version)
        target = self.path / str(version) / "status.json"
        tmp = target.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(
            json.dumps({"status": status, **detail}, indent=2, default=str), encoding="utf-8"
        )
        os.replace(tmp, target)

    def approved(self) -> str | None:
        """The version promoted last, if any."""
        pointer = self.path / "approved.json"
        return _read_json(pointer)["version"] if pointer.is_file() else None

    def promote(self, version: str, detail: dict[str, Any]) -> None:
        """Point ``approved.json`` at ``version``."""
        self.get(version)
        pointer = self.path / "approved.json"
        tmp = pointer.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(
            json.dumps({"version": str(version), **detail}, indent=2, default=str), encoding="utf-8"
        )
        os.replace(tmp, pointer)

    def get(self, version: str) -> ModelVersion:
        """Metadata of one version."""
        folder = self.path / str(version)
        if not (folder / "metadata.json").is_file():
            raise ModelRegistryError(
                UNKNOWN_VERSION.format(version=version, path=self.path, versions=self.versions())
            )
        return ModelVersion(str(version), folder, _read_json(folder / "metadata.json"))

    def reference(self, version: str) -> Path | None:
        """The training snapshot of ``version`` (Parquet), if it was kept."""
        path = self.get(version).path / REFERENCE_FILE
        return path if path.is_file() else None

    def load(self, version: str) -> tuple[Any, ModelVersion]:
        """The fitted model of ``version`` and its metadata."""
        entry = self.get(version)
        import joblib

        try:
            model = joblib.load(entry.path / "model.joblib")
        except Exception as exc:  # any unpickling failure means the artifact is unusable
            raise ModelRegistryError(
                LOAD_FAILED.format(
                    version=version, path=entry.path, message=f"{type(exc).__name__}: {exc}"
                ),
                context={"registry": str(self.path), "version": version},
            ) from exc
        if not hasattr(model, "predict_proba"):
            raise ModelRegistryError(
                LOAD_FAILED.format(
                    version=version, path=entry.path, message="the artifact has no predict_proba"
                ),
                context={"registry": str(self.path), "version": version},
            )
        return model, entry

    def register(
        self, model: Any, metadata: dict[str, Any], reference: pd.DataFrame | None = None
    ) -> ModelVersion:
        """Store ``model`` as the next version; ``metadata`` is completed with the version.

        ``reference`` (the training rows with their scores) is kept as ``reference.parquet``: the
        snapshot that drift is measured against.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        versions = self.versions()
        version = str(int(versions[-1]) + 1 if versions else 1)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=self.path))
        try:
            import joblib

            joblib.dump(model, staging / "model.joblib")
            if reference is not None:
                write_parquet(reference, staging / REFERENCE_FILE)
            (staging / "metadata.json").write_text(
                json.dumps({**metadata, "version": version}, indent=2, default=str),
                encoding="utf-8",
            )
            os.rename(staging, self.path / version)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return self.get(version)

"""Dagster entry point: every assessment in ./assessments (or $IMPACT_ASSETS_ASSESSMENTS_DIR)."""

from pathlib import Path

from impact_assets import ProjectPaths, build_definitions

defs = build_definitions(ProjectPaths.from_env(default_project_dir=Path(__file__).parent))

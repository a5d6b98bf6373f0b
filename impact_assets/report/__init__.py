"""The impact report: Markdown and self-contained HTML per partition, plots embedded."""

from impact_assets.report._build import Report, build_report

__all__ = ["Report", "build_report"]

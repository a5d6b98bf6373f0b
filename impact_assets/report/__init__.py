"""The impact report: Markdown and self-contained HTML per partition, plots embedded."""

from impact_assets.report._build import STATUS_ORDER, Report, build_report

__all__ = ["STATUS_ORDER", "Report", "build_report"]

"""Reports: the evaluation of run folders, or one person's check, as one self-contained HTML
page with its figures (also written as PNG and PDF)."""

from idia.report.html import write_check_report, write_report

__all__ = ["write_check_report", "write_report"]

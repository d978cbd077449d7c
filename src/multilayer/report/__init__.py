"""Run reports: learning curves, confusion matrix, mistakes and weights, as PNG and HTML.

``write_report(run_dir)`` (also ``mlp report RUN_DIR``) writes ``RUN_DIR/report/index.html``
and the PNG figures next to it. matplotlib is needed (``pip install 'multilayer[plots]'``).
"""

from multilayer.report.build import REPORT_DIR, REPORT_HTML, TestData, write_report

__all__ = ["REPORT_DIR", "REPORT_HTML", "TestData", "write_report"]

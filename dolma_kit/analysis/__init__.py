"""Corpus analysis: WIMBD-style statistics with an HTML report, and evaluation-data decontamination.

Library entry points (the CLI and pipelines call these): `build_report(StatsConfig(...))` counts a corpus and
writes stats.json + report.html; `decontaminate(DecontamConfig(...))` marks documents that share n-grams with
evaluation data. Submodules import matplotlib and numpy lazily through these functions' modules only.
"""

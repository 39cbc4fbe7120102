"""Analyzability of the musical thought: the metric, the corpus analysis, the timeline figure, one-song analysis."""

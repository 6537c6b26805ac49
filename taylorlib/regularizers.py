"""Regularizers on the movement (issue: Landscape)."""

__all__: list[str] = []

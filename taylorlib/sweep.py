"""Grids over (n, d, m) x seeds with progress and .npz caching (issue: Expressivity)."""

__all__: list[str] = []

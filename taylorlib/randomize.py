"""Bai-Lee sign randomization and its exact expectations (issue: Randomization)."""

__all__: list[str] = []

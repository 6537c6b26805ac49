"""The quadratic model f^Q and the QuadNTK (issue: Randomization)."""

__all__: list[str] = []

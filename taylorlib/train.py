"""Pure training steps driven by lax.scan, with optax (issue: Landscape)."""

__all__: list[str] = []

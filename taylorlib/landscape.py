"""Hessian-vector products, Lanczos spectra and SOSP checks (issue: Landscape)."""

__all__: list[str] = []

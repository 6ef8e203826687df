"""Sizes in the sentences people read ("the limit is 50 MB")."""

from __future__ import annotations


def human_size(n: int) -> str:
    """Binary units, as the upload limits are configured ("200 MB" is 200 * 1024**2)."""
    if n >= 1024**3:
        return f"{n / 1024**3:.1f} GB"
    if n >= 1024**2:
        value = n / 1024**2
        return f"{value:.0f} MB" if n % 1024**2 == 0 or value >= 10 else f"{value:.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} bytes"

"""Old spellings of names that moved to another module: a module ``__getattr__`` that warns and forwards."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any


def moved_names(old: str, moved: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``taylorlib.<old>``: ``moved[name]`` is the module that now holds ``name``.

    Reading ``tl.<old>.<name>`` (or ``from taylorlib.<old> import <name>``) returns the object of its new
    home and emits a ``DeprecationWarning`` naming the new spelling; the old spellings are not listed in
    ``taylorlib.<old>.__all__``. Any other missing name raises ``AttributeError`` as usual.

    Example:
        >>> import warnings
        >>> getattr_ = moved_names("quadratic", {"order_k_ntk": "higher_order"})
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     fn = getattr_("order_k_ntk")
        >>> fn.__module__, caught[0].category.__name__
        ('taylorlib.higher_order', 'DeprecationWarning')
        >>> getattr_("nonexistent")
        Traceback (most recent call last):
        ...
        AttributeError: module 'taylorlib.quadratic' has no attribute 'nonexistent'
    """

    def __getattr__(name: str) -> Any:
        new = moved.get(name)
        if new is None:
            raise AttributeError(f"module 'taylorlib.{old}' has no attribute {name!r}")
        warnings.warn(
            f"tl.{old}.{name} moved to tl.{new}.{name}; the old spelling is deprecated and will be removed",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(f"taylorlib.{new}"), name)

    return __getattr__

"""`ReadOnly[T]`: a model's public, read-only view of its private attribute of the same name.

The state models keep their fields private (`self._index`) and change them only through
methods that announce the change; `index: ReadOnly[int] = ReadOnly()` in the class body is
what a one-line `@property` returning `self._index` was, written once.
"""
from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

__all__ = ["ReadOnly"]

T = TypeVar("T")


class ReadOnly(Generic[T]):
    """`model.name` reads `model._name`; assigning it raises AttributeError (use the model's methods)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name
        self._private = "_" + name

    @overload
    def __get__(self, model: None, owner: type) -> ReadOnly[T]: ...
    @overload
    def __get__(self, model: object, owner: type) -> T: ...

    def __get__(self, model: object | None, owner: type) -> ReadOnly[T] | T:
        if model is None:
            return self
        value: T = getattr(model, self._private)
        return value

    def __set__(self, model: object, value: Any) -> None:
        raise AttributeError(f"{self._name} is read-only")

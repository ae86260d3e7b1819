"""Undo and redo for a drawing pad: every change to the strokes is one step back.

The notebook pad keeps its strokes in Python and uses this; the page keeps the
same model in ``app.js``. Clear is a step like any other, so Ctrl+Z after Clear
brings the drawing back: no work is lost to a stray key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class History(Generic[T]):
    """The present state plus the states before it (undo) and after it (redo)."""

    def __init__(self, initial: T, limit: int = 200):
        self.present = initial
        self.past: list[T] = []
        self.future: list[T] = []
        self.limit = limit

    def push(self, state: T) -> None:
        """A new state from a user action: the old one can be undone, nothing is left to redo."""
        self.past.append(self.present)
        del self.past[: -self.limit]
        self.present = state
        self.future.clear()

    def undo(self) -> bool:
        if not self.past:
            return False
        self.future.append(self.present)
        self.present = self.past.pop()
        return True

    def redo(self) -> bool:
        if not self.future:
            return False
        self.past.append(self.present)
        self.present = self.future.pop()
        return True

    def map(self, fn: Callable[[T], T]) -> None:
        """Change every state alike (e.g. strokes fitted to a resized pad), so undo stays on the pad."""
        self.present = fn(self.present)
        self.past = [fn(s) for s in self.past]
        self.future = [fn(s) for s in self.future]

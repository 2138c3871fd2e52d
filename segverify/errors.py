"""The one error type that reaches the user: bad input, reported as FILE:LINE: message (exit 2)."""

from __future__ import annotations


class InputError(Exception):
    """Input that cannot be judged. Always names the file, and the line where there is one."""

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"

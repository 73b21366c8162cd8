"""Opening an input file: a path or ``-`` (standard input), plain or compressed
(gzip, bzip2, xz: recognised by their first bytes, whatever the file is called),
read as UTF-8 text (a byte-order mark is dropped)."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..domain.errors import ValidationError

__all__ = ["InputFile", "open_input"]

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)


class InputFile:
    """The text lines of an input, with how far it has been read (bytes of the file
    as stored, so progress against its size is right for compressed files too)."""

    def __init__(self, name: str, raw: BinaryIO, size: int) -> None:
        self.name = name
        self.size = size
        self._raw = raw
        head = raw.peek(6)[:6] if isinstance(raw, io.BufferedReader) else b""
        self.compression = next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)
        stream: BinaryIO = raw
        if self.compression == "gzip":
            stream = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
        elif self.compression == "bzip2":
            stream = bz2.BZ2File(raw, mode="rb")  # type: ignore[assignment]
        elif self.compression == "xz":
            stream = lzma.LZMAFile(raw, mode="rb")  # type: ignore[assignment]  # noqa: SIM115 - closed with the file
        self._text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")

    @property
    def bytes_read(self) -> int:
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self._text
        except UnicodeDecodeError as exc:
            raise ValidationError("file", self.name, f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except (OSError, EOFError, lzma.LZMAError) as exc:
            kind = self.compression or "file"
            raise ValidationError("file", self.name, f"cannot be read as {kind} ({exc})") from None


@contextlib.contextmanager
def open_input(file: str) -> Iterator[InputFile]:
    """``file`` (a path, or ``-`` for standard input) as an :class:`InputFile`."""
    if file == "-":
        yield InputFile("standard input", sys.stdin.buffer, 0)
        return
    try:
        raw = open(file, "rb")  # noqa: SIM115 - closed below
        size = Path(file).stat().st_size
    except OSError as exc:
        raise ValidationError("file", file, f"cannot read: {exc.strerror or exc}") from None
    with raw:
        yield InputFile(file, raw, size)

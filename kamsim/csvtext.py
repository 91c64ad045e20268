"""What is wrong with a CRM export that is not a comma-separated UTF-8 text file, told the way a
user can act on it (both CSV readers, kamsim.portfolio and kamsim.dmu.crm, use these).

Spreadsheets save CSV in several ways: with ``;`` or a tab between fields (Excel in many
locales), in the computer's own code page (Latin-1, Windows-1252), or not at all (an .xlsx
saved under a .csv name). The csv module reads each of them as something else: a one-column
header, "position 159" of some buffer, binary noise as column names. kamsim reads one
format, comma-separated UTF-8, and says which of these a file is instead.
"""

from __future__ import annotations

import io
from pathlib import Path

from kamsim.errors import InputError, Location, Problem

__all__ = ["check_csv_text", "check_csv_head", "csv_lines", "decode_problem", "norm_name"]

#: how much of the file's start is looked at for a binary file and for the header's separator
_HEAD_BYTES = 65_536
#: the first bytes of a zip file (an .xlsx, .ods, .numbers) and of an old OLE2 .xls
_BINARY_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
_SAVE_AS = "in a spreadsheet, Save As 'CSV UTF-8 (comma delimited)'"


def norm_name(text: str) -> str:
    """A column name or label as both CSV readers compare it (the accounts and the contacts
    export): case, spaces and ``-`` do not count (``Payment Risk``, ``payment-risk`` and
    ``payment_risk`` are one name)."""
    return "_".join(text.strip().lower().replace("-", " ").split())


def check_csv_text(path: str | Path, shown: str) -> None:
    """Raise the InputError of a file that is not CSV text (a workbook, any file with NUL
    bytes) or whose header separates its fields with ``;`` or a tab and has no ``,``.
    OSError is the caller's (it words a file it cannot open its own way)."""
    with open(path, "rb") as fh:
        check_csv_head(fh.read(_HEAD_BYTES), shown)


def check_csv_head(data: bytes, shown: str) -> None:
    """:func:`check_csv_text` of a file already read (``data``: its bytes, or their start)."""
    head = data[:_HEAD_BYTES]
    if head.startswith(_BINARY_MAGIC) or b"\x00" in head:
        what = ("a spreadsheet workbook (.xlsx/.xls), not a CSV text file"
                if head.startswith(_BINARY_MAGIC) else "not a CSV text file (it has binary bytes)")
        raise InputError([Problem(Location(shown, 1, 1), what, f"a CSV file; {_SAVE_AS}")])
    first = head.split(b"\n", 1)[0].removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace")
    if "," in first:
        return
    for sep, name in ((";", "';'"), ("\t", "tabs")):
        if sep in first:
            raise InputError([Problem(
                Location(shown, 1, first.index(sep) + 1),
                f"the file separates its fields with {name}; kamsim reads comma-separated "
                "files", f"',' between fields; {_SAVE_AS}")])


def csv_lines(data: bytes) -> io.TextIOWrapper:
    """The text of a CSV file read as ``data``, for ``csv.reader``: decoded as it is read
    (UTF-8, a byte-order mark dropped; a UnicodeDecodeError where a byte is not), as
    ``open(path, encoding="utf-8-sig", newline="")`` gives it, without a second copy of the
    whole file."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")


def decode_problem(data: bytes, shown: str) -> Problem:
    """The problem of a file that is not UTF-8 (``data``: its bytes), at the line and column
    of its first byte that is not (a UnicodeDecodeError names a position in some buffer of
    the reader's, not a place a user can find)."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = start + exc.start
        line_start = data.rfind(b"\n", 0, at) + 1
        line = data.count(b"\n", 0, at) + 1
        col = len(data[max(line_start, start):at].decode("utf-8", "replace")) + 1
        return Problem(Location(shown, line, col),
                       f"byte 0x{data[at]:02x} is not UTF-8 text (the file is in another "
                       "encoding, e.g. Latin-1 or Windows-1252)",
                       f"save the file as UTF-8; {_SAVE_AS}")
    return Problem(Location(shown, 1, 1), "the file is not UTF-8 text",  # (not reached)
                   f"save the file as UTF-8; {_SAVE_AS}")

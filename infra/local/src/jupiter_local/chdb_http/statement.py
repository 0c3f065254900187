"""Just enough SQL lexing to answer what the server must know about a request's SQL: where an
INSERT's inline data starts and in which format, the statement's own FORMAT clause, the names a
SET assigns, and whether there is more than one statement. Pure; never raises on odd input."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "quoted", "string", "number", "punct"
    start: int
    end: int
    text: str  # upper-cased for words, the character for punctuation, "" otherwise


_WORD_START: Final = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_WORD_CHARS: Final = _WORD_START | frozenset(b"0123456789$")
_SPACE: Final = frozenset(b" \t\n\r\f\v")
_HEREDOC_RE: Final = re.compile(rb"\$([A-Za-z0-9_]*)\$")


def _skip_quoted(sql: bytes, pos: int, quote: int) -> int:
    """Index just past the literal or quoted identifier that starts at ``pos``."""
    i = pos + 1
    n = len(sql)
    while i < n:
        char = sql[i]
        if char == 0x5C:  # backslash escape
            i += 2
            continue
        if char == quote:
            if i + 1 < n and sql[i + 1] == quote:  # doubled quote
                i += 2
                continue
            return i + 1
        i += 1
    return n


def _tokens(sql: bytes) -> Iterator[_Token]:
    """ClickHouse tokens, skipping whitespace and comments. Never raises on odd input."""
    i = 0
    n = len(sql)
    while i < n:
        char = sql[i]
        if char in _SPACE:
            i += 1
        elif sql.startswith(b"--", i) or sql.startswith(b"#!", i) or sql.startswith(b"# ", i):
            end = sql.find(b"\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith(b"/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith(b"/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith(b"*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif char == 0x27:  # '
            end = _skip_quoted(sql, i, char)
            yield _Token("string", i, end, "")
            i = end
        elif char in (0x60, 0x22):  # ` "
            end = _skip_quoted(sql, i, char)
            yield _Token("quoted", i, end, "")
            i = end
        elif char == 0x24 and (heredoc := _HEREDOC_RE.match(sql, i)) is not None:
            close = sql.find(heredoc.group(0), heredoc.end())
            end = n if close < 0 else close + len(heredoc.group(0))
            yield _Token("string", i, end, "")
            i = end
        elif char in _WORD_START or char >= 0x80:
            end = i + 1
            while end < n and (sql[end] in _WORD_CHARS or sql[end] >= 0x80):
                end += 1
            yield _Token("word", i, end, sql[i:end].decode("utf-8", "replace").upper())
            i = end
        elif 0x30 <= char <= 0x39:
            end = i + 1
            while end < n and (sql[end] in _WORD_CHARS or sql[end] == 0x2E):
                end += 1
            yield _Token("number", i, end, "")
            i = end
        else:
            yield _Token("punct", i, i + 1, chr(char))
            i += 1


@dataclass(frozen=True)
class Statement:
    """What the server needs to know about one request's SQL."""

    keyword: str  # first keyword upper-cased, "(" for a parenthesised query, "" if neither
    empty: bool = False
    insert_head: bytes | None = None  # "INSERT INTO t (cols) " when there is inline data
    insert_format: str | None = None
    data_offset: int = 0  # where the inline data starts in the request text
    output_format: str | None = None  # the statement's own FORMAT clause
    set_names: tuple[str, ...] = ()  # settings a SET statement assigns
    multi_statement: bool = False


# A FORMAT or VALUES word right after these is a table name, not the clause.
_NAME_POSITION: Final = frozenset({"INTO", "TABLE", "FUNCTION", "."})


def analyse(sql: bytes) -> Statement:
    """Classify the SQL; for an INSERT with inline data, find the head, format and data."""
    tokens = _tokens(sql)
    first = next(tokens, None)
    if first is None:
        return Statement(keyword="", empty=True)
    keyword = first.text if first.kind == "word" or first.text == "(" else ""
    inline_data = keyword == "INSERT"  # until a SELECT / WITH / FROM INFILE shows otherwise
    depth = 0
    previous = first
    output_format: str | None = None
    set_names: list[str] = []
    ended = False
    for token in tokens:
        if ended:
            return Statement(keyword, multi_statement=True)
        if token.kind == "punct":
            if token.text in "([":
                depth += 1
            elif token.text in ")]":
                depth = max(0, depth - 1)
            elif token.text == ";" and depth == 0:
                ended = True
            elif (
                token.text == "="
                and depth == 0
                and keyword == "SET"
                and previous.kind in ("word", "quoted")
            ):
                name = sql[previous.start : previous.end].decode("utf-8", "replace")
                set_names.append(name.strip('`"'))
        elif token.kind == "word" and depth == 0 and previous.text not in _NAME_POSITION:
            if inline_data and token.text in ("SELECT", "WITH", "FROM"):
                inline_data = False
            elif inline_data and token.text == "VALUES":
                return Statement(keyword, False, sql[: token.start], "Values", token.end)
            elif token.text == "FORMAT":
                name_token = next(tokens, None)
                if name_token is None or name_token.kind != "word":
                    break
                fmt = sql[name_token.start : name_token.end].decode()
                if inline_data:
                    data_offset = _data_start(sql, name_token.end)
                    return Statement(keyword, False, sql[: token.start], fmt, data_offset)
                output_format = fmt
                previous = name_token
                continue
        previous = token
    return Statement(keyword, output_format=output_format, set_names=tuple(set_names))


def _data_start(sql: bytes, pos: int) -> int:
    """ClickHouse's rule: data starts after the first newline, or after the blanks."""
    n = len(sql)
    while pos < n and sql[pos] in b" \t\f":
        pos += 1
    if pos < n and sql[pos] == 0x0D:
        pos += 1
    if pos < n and sql[pos] == 0x0A:
        pos += 1
    return pos

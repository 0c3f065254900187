"""Errors as ClickHouse reports them: the ``Code: N. DB::Exception: ... (NAME)`` text, the
``X-ClickHouse-Exception-Code`` header clickhouse-connect reads, and the HTTP status."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

# ClickHouse's exceptionCodeToHTTPStatus, keyed by the error name the engine puts in its message.
_STATUS_BY_ERROR: Final[Mapping[str, int]] = {
    "REQUIRED_PASSWORD": 401,
    **dict.fromkeys(
        (
            "UNKNOWN_USER",
            "WRONG_PASSWORD",
            "AUTHENTICATION_FAILED",
            "SET_NON_GRANTED_ROLE",
            "ACCESS_DENIED",
        ),
        403,
    ),
    **dict.fromkeys(
        (
            "BAD_ARGUMENTS",
            "CANNOT_COMPILE_REGEXP",
            "CANNOT_PARSE_TEXT",
            "CANNOT_PARSE_ESCAPE_SEQUENCE",
            "CANNOT_PARSE_QUOTED_STRING",
            "CANNOT_PARSE_DATE",
            "CANNOT_PARSE_DATETIME",
            "CANNOT_PARSE_NUMBER",
            "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING",
            "CANNOT_PARSE_IPV4",
            "CANNOT_PARSE_IPV6",
            "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
            "CANNOT_PARSE_UUID",
            "DUPLICATE_COLUMN",
            "ILLEGAL_COLUMN",
            "UNKNOWN_ELEMENT_IN_AST",
            "UNKNOWN_TYPE_OF_AST_NODE",
            "TOO_DEEP_AST",
            "TOO_BIG_AST",
            "UNEXPECTED_AST_STRUCTURE",
            "SYNTAX_ERROR",
            "INCORRECT_DATA",
            "TYPE_MISMATCH",
            "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
        ),
        400,
    ),
    **dict.fromkeys(
        (
            "UNKNOWN_TABLE",
            "UNKNOWN_FUNCTION",
            "UNKNOWN_IDENTIFIER",
            "UNKNOWN_TYPE",
            "UNKNOWN_STORAGE",
            "UNKNOWN_DATABASE",
            "UNKNOWN_SETTING",
            "UNKNOWN_DIRECTION_OF_SORTING",
            "UNKNOWN_AGGREGATE_FUNCTION",
            "UNKNOWN_FORMAT",
            "UNKNOWN_DATABASE_ENGINE",
            "UNKNOWN_TYPE_OF_QUERY",
            "RESOURCE_NOT_FOUND",
        ),
        404,
    ),
    "QUERY_IS_TOO_LARGE": 413,
    "NOT_IMPLEMENTED": 501,
    "SOCKET_TIMEOUT": 503,
    "CANNOT_OPEN_FILE": 503,
    "CANNOT_SCHEDULE_TASK": 503,
    "HTTP_LENGTH_REQUIRED": 411,
    "TIMEOUT_EXCEEDED": 408,
}

_CODE_RE: Final = re.compile(r"Code:\s*(\d+)")
_NAME_RE: Final = re.compile(r"\(([A-Z][A-Z0-9_]+)\)\s*$")


class ClickHouseError(Exception):
    """An error reported to the client the way ClickHouse reports it."""

    def __init__(self, code: int, name: str, text: str) -> None:
        self.code = code
        self.name = name
        self.message = f"Code: {code}. DB::Exception: {text}. ({name})"
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return _STATUS_BY_ERROR.get(self.name, 500)

    @classmethod
    def from_engine(cls, exc: BaseException) -> ClickHouseError:
        """Wrap an engine exception, keeping its ``Code: N. DB::Exception: ...`` text."""
        text = str(exc).strip()
        start = text.find("Code:")
        code_match = _CODE_RE.search(text)
        if start < 0 or code_match is None:
            return cls(1001, "STD_EXCEPTION", text or type(exc).__name__)
        name_match = _NAME_RE.search(text)
        error = cls(int(code_match.group(1)), name_match.group(1) if name_match else "", "")
        error.message = text[start:]
        error.args = (error.message,)
        return error


def bad_arguments(text: str) -> ClickHouseError:
    return ClickHouseError(36, "BAD_ARGUMENTS", text)


def not_implemented(text: str) -> ClickHouseError:
    return ClickHouseError(48, "NOT_IMPLEMENTED", text)

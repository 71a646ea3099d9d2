"""TBM's rule for a tag name, shared by the gateway (its 400s) and the userstore (its own check)."""

from __future__ import annotations

from common.errors import InvalidArgument

MAX_NAME = 100
NAME_REQUIRED = "Tag name is required and must be a non-empty string"
NAME_TOO_LONG = f"Tag name must be {MAX_NAME} characters or less"
# What JavaScript's String.prototype.trim() removes (TBM trims with it). Python's str.strip()
# differs: it keeps U+FEFF and removes U+001C..U+001F and U+0085, which JavaScript keeps.
JS_WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)


def utf16_length(text: str) -> int:
    """The length JavaScript reports (UTF-16 code units: an emoji counts twice)."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def clean_name(value: object) -> str:
    """A tag name as TBM stores it (trimmed), or InvalidArgument in TBM's words."""
    name = value.strip(JS_WHITESPACE) if isinstance(value, str) else ""
    if not name:
        raise InvalidArgument(NAME_REQUIRED, field="name")
    # TBM measures the trimmed name with JavaScript's length: keep its limit to the unit.
    if utf16_length(name) > MAX_NAME:
        raise InvalidArgument(NAME_TOO_LONG, field="name")
    return name

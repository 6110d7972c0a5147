"""Whole numbers typed by the operator.

``str.isdigit()`` is true for '²' and other digits ``int()`` refuses, so a
check with it alone lets such text through to a ValueError. Numbers here
are ASCII digits only.
"""


def is_decimal(text: str) -> bool:
    return text.isascii() and text.isdigit()

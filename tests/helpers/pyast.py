"""`ast.parse` for the tests that read our own source.

CPython 3.11.7 keeps the AST constructor's recursion depth in interpreter-wide state, so a
traceback formatted in another thread at the same moment (3.11 parses the failing line for
its carets) can make `ast.parse` raise "SystemError: AST constructor recursion depth
mismatch" (CPython gh-106905, fixed in later releases). The source is fine; parse again."""

from __future__ import annotations

import ast

TRIES = 5


def parse(source: str) -> ast.Module:
    for _ in range(TRIES - 1):
        try:
            return ast.parse(source)
        except SystemError as exc:
            if "recursion depth mismatch" not in str(exc):
                raise
    return ast.parse(source)

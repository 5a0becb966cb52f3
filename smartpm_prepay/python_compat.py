"""Work-arounds for bugs of the Python that runs Odoo, each with its canary test
(tests/test_python_compat.py). No Odoo import: the module is installed as the addon loads.

1. CPython 3.11.0–3.11.7 and 3.12.0–3.12.1: ``ast.parse`` may fail with ``SystemError: AST
   constructor recursion depth mismatch`` (https://github.com/python/cpython/issues/106905,
   fixed by https://github.com/python/cpython/pull/113035 in 3.11.8 and 3.12.2). The C code
   that turns the parser's tree into ``ast`` objects keeps its recursion depth in state shared
   by the whole interpreter; a garbage collection during that conversion runs finalizers,
   which may release the GIL to another thread that parses too (or parse themselves), and the
   depth of one conversion is overwritten by the other's. Odoo parses with ``ast`` in every
   request thread (``ast.literal_eval`` of the manifests on the first static file, views'
   expressions): on the journeys' fresh database the browser's first two requests met there,
   ``/web/assets/…/web.assets_web.min.js`` answered 500 and the tour never started.
   ``ast.parse`` (which ``ast.literal_eval`` calls, Odoo's own ``literal_eval`` too) runs here
   with the automatic garbage collection off: no collection, no finalizer, no switch of
   thread inside the conversion. A lock keeps the collector's on/off state right when
   several threads parse at once.
"""

import ast
import gc
import sys
import threading

_ORIGINAL_PARSE = ast.parse


def ast_parse_is_affected(version_info=None):
    """True on the Pythons whose ``ast.parse`` has the bug of gh-106905."""
    version = tuple((version_info or sys.version_info)[:3])
    return (3, 11, 0) <= version < (3, 11, 8) or (3, 12, 0) <= version < (3, 12, 2)


_parse_lock = threading.RLock()
_parse_depth = 0
_gc_was_enabled = False


def _parse_without_collection(*args, **kwargs):
    global _parse_depth, _gc_was_enabled
    with _parse_lock:
        if not _parse_depth:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _parse_depth += 1
        try:
            return _ORIGINAL_PARSE(*args, **kwargs)
        finally:
            _parse_depth -= 1
            if not _parse_depth and _gc_was_enabled:
                gc.enable()


def install():
    """Apply the work-arounds this Python needs (idempotent)."""
    if ast_parse_is_affected() and ast.parse is _ORIGINAL_PARSE:
        ast.parse = _parse_without_collection

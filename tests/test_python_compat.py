"""smartpm_prepay/python_compat.py: the work-arounds for the Python that runs Odoo. Each bug has
a canary that fails the day the Python in use no longer has it (then the work-around goes)."""

import pathlib
import subprocess
import sys
import textwrap

import pytest

COMPAT = pathlib.Path(__file__).resolve().parents[1] / "smartpm_prepay" / "python_compat.py"

# A finalizer that parses, run by a garbage collection in the middle of a parse: the same
# overwrite of the shared recursion depth as another thread's parse after the finalizer has
# released the GIL (gh-106905), but certain instead of a race.
REPRODUCTION = textwrap.dedent(
    """
    import ast, gc, importlib.util, sys

    spec = importlib.util.spec_from_file_location("python_compat", sys.argv[1])
    compat = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compat)
    if sys.argv[2] == "patched":
        compat.install()

    class Bomb:
        def __init__(self):
            self.me = self  # a reference cycle: only a collection frees it

        def __del__(self):
            ast.parse("x = (1, 2, 3)")
            Bomb()  # and the next collection finds another

    source = "\\n".join(
        f"def f{i}(a, b):\\n    return [a + b * {i} for _ in range(3)]" for i in range(200)
    )
    gc.set_threshold(50)
    Bomb()
    try:
        for _ in range(20):
            tree = ast.literal_eval("[1, {'a': (2, 3)}]"), ast.parse(source)
    except SystemError as exc:
        print("SystemError", exc)
    else:
        assert len(tree[1].body) == 200 and tree[0] == [1, {"a": (2, 3)}]
        print("parsed", gc.isenabled())
    """
)


def _run(mode):
    out = subprocess.run(
        [sys.executable, "-c", REPRODUCTION, str(COMPAT), mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


def _compat():
    import importlib.util

    spec = importlib.util.spec_from_file_location("python_compat", COMPAT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_canary_this_python_has_the_ast_recursion_depth_bug_exactly_when_compat_says_so():
    affected = _compat().ast_parse_is_affected()
    result = _run("original")
    if affected:
        assert result.startswith("SystemError AST constructor recursion depth mismatch"), result
    else:
        assert result == "parsed True", result


def test_the_work_around_parses_through_a_collection_and_leaves_the_collector_on():
    assert _run("patched") == "parsed True"


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ((3, 10, 13), False),
        ((3, 11, 0), True),
        ((3, 11, 7), True),
        ((3, 11, 8), False),
        ((3, 12, 1), True),
        ((3, 12, 2), False),
        ((3, 13, 0), False),
    ],
)
def test_the_versions_the_work_around_is_for(version, affected):
    assert _compat().ast_parse_is_affected(version) is affected


def test_install_leaves_a_fixed_python_alone(monkeypatch):
    import ast

    compat = _compat()
    monkeypatch.setattr(compat, "ast_parse_is_affected", lambda: False)
    original = ast.parse
    compat.install()
    assert ast.parse is original

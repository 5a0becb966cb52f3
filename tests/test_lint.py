"""`make lint` as a test, so CI keeps the code as CONVENTIONS.md describes it."""

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PATHS = ["meter_bridge", "meter_sim", "tests", "bench", "smartpm_prepay", "scripts"]
BIN = str(pathlib.Path(sys.executable).parent)
RUFF = shutil.which("ruff", path=BIN) or shutil.which("ruff")
PYLINT = shutil.which("pylint", path=BIN)
OCA_MODULE = shutil.which("oca-checks-odoo-module", path=BIN)
OCA_PO = shutil.which("oca-checks-po", path=BIN)
# see test_translations_pass_ocas_po_checks (also the Makefile's lint)
PO_CHECK_ARGS = ["--disable=po-pretty-format"]


@pytest.mark.skipif(not RUFF, reason="ruff is not installed")
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_code_passes_ruff(command):
    run = subprocess.run([RUFF, *command, *PATHS], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.skipif(not PYLINT, reason="pylint-odoo is not installed (make setup)")
@pytest.mark.timeout(900)
def test_addon_passes_pylint_odoo_with_ocas_checks():
    """OCA's blocking pylint-odoo run (.pylintrc-mandatory): any finding fails, and so does
    an option of the rcfile that this pylint-odoo does not know."""
    run = subprocess.run(
        [PYLINT, "--rcfile=.pylintrc-mandatory", "--output-format=text", "smartpm_prepay"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.skipif(not OCA_MODULE, reason="oca-odoo-pre-commit-hooks is missing (make setup)")
def test_addon_passes_ocas_module_checks():
    """OCA's pre-commit checks of the addon's XML, CSV and manifest (oca-checks-odoo-module);
    an exception is justified where it is made (an `oca-hooks:disable=` comment)."""
    run = subprocess.run(
        [OCA_MODULE, "smartpm_prepay/__manifest__.py"], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.skipif(not OCA_PO, reason="oca-odoo-pre-commit-hooks is missing (make setup)")
def test_translations_pass_ocas_po_checks():
    """OCA's pre-commit checks of the .pot and every .po (oca-checks-po: syntax, module
    comments, duplicates, printf and format placeholders). Not `po-pretty-format`: it also
    empties every msgstr equal to its msgid, and then a term deliberately kept ("kWh", "CSV",
    "OBIS") cannot be told from one nobody translated yet (test_i18n.py's completeness check)."""
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "smartpm_prepay/i18n").glob("*.po*"))
    assert len(files) >= 5, files  # the .pot and the four languages of issue 20
    run = subprocess.run([OCA_PO, *PO_CHECK_ARGS, *files], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr

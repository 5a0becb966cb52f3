"""The licence boundary of the README: nothing in the addon or the bridge imports gurux."""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_addon_and_bridge_do_not_import_gurux_or_meter_sim():
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("smartpm_prepay", "meter_bridge")
        for path in (ROOT / folder).rglob("*.py")
        if any(
            word in path.read_text()
            for word in ("import gurux", "from gurux", "import meter_sim", "from meter_sim")
        )
    ]
    assert offenders == []

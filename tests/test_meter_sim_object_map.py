"""meter_sim's object map (another vendor's OBIS codes): the mapped objects are listed and
served at their new codes only, a bad map is refused at start, the CLI takes a map file."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("gurux_dlms")

from vendor_profile import SIM_OBJECT_MAP  # noqa: E402

from meter_sim import cli, objects  # noqa: E402
from meter_sim.fleet import Fleet  # noqa: E402
from meter_sim.model import MeterConfig  # noqa: E402


def _codes(object_map=None):
    return {o.logicalName for o in objects.build_objects("VND00001", object_map)}


def test_without_a_map_the_object_list_is_the_contract():
    assert (
        _codes()
        == _codes({})
        == {ln for ln, _ic, _a in objects.CONTRACT} | {objects.ASSOCIATION_LN}
    )


def test_mapped_objects_are_listed_at_their_new_codes_only():
    codes = _codes(SIM_OBJECT_MAP)
    assert set(SIM_OBJECT_MAP.values()) <= codes
    assert not set(SIM_OBJECT_MAP) & codes
    assert len(codes) == len(_codes())


@pytest.mark.parametrize(
    ("object_map", "message"),
    [
        ({"0.0.19.99.0.255": "0.128.1.1.1.255"}, "no object of the simulator"),
        ({objects.CREDIT: objects.LIMITER}, "another object's OBIS code"),
        ({objects.CREDIT: "0.128.1.1.1.255", objects.LIMITER: "0.128.1.1.1.255"}, "two objects"),
        ({objects.CREDIT: "0.0.19.10.0"}, "not an OBIS code"),
        ({objects.ASSOCIATION_LN: "0.0.40.0.1.255"}, "association view"),
    ],
)
def test_bad_maps_are_refused_at_start(object_map, message):
    with pytest.raises(ValueError, match=message):
        Fleet(meters=[MeterConfig("VND00001", object_map=object_map)], speed=0)


def test_cli_takes_a_map_file_and_refuses_a_bad_one(tmp_path, capsys):
    good = tmp_path / "map.json"
    good.write_text(json.dumps(SIM_OBJECT_MAP))
    meters, _extra = cli._meters(cli.build_parser().parse_args(["--object-map", str(good)]))
    assert meters[0].object_map == SIM_OBJECT_MAP
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({objects.CREDIT: objects.LIMITER}))
    assert cli.main(["--object-map", str(bad), "--base-port", "0"]) == 2
    assert "another object's OBIS code" in capsys.readouterr().err
    assert cli.main(["--object-map", str(tmp_path / "missing.json")]) == 2

"""`meter-bridge read` for a field engineer: clocks, scaler/units, enums, structures, --json
(meter_bridge.describe, pure; and the tool against tests/quirky_meter.py)."""

from __future__ import annotations

import json

import pytest
from quirky_meter import Quirks, QuirkyMeter

from meter_bridge import cli_read, codec
from meter_bridge.describe import describe, describe_datetime, looks_like_datetime

pytestmark = pytest.mark.timeout(60)
# 2026-03-29 02:30:00, deviation -60 (local = UTC+1), status daylight saving active
CLOCK_RAW = b"\x07\xea\x03\x1d\x07\x02\x1e\x00\x00\xff\xc4\x80"


def test_clock_octet_string_is_local_iso_with_deviation_and_status():
    d = describe(b"\x09\x0c" + CLOCK_RAW, 8, 2)
    assert d["type"] == "date-time"
    assert d["iso"] == "2026-03-29T02:30:00+01:00"
    assert d["utc"] == "2026-03-29T01:30:00Z"
    assert d["deviation_min"] == -60
    assert d["status"] == ["daylight saving active"]
    assert d["text"] == (
        "2026-03-29T02:30:00+01:00 (deviation -60 min; status: daylight saving active)"
    )


def test_date_time_tag_and_unspecified_deviation():
    raw = codec.datetime_to_bytes(codec.parse_iso("2026-01-02T03:04:05Z"))
    raw = raw[:9] + b"\x80\x00" + b"\x09"  # deviation not specified, invalid + doubtful
    d = describe(b"\x19" + raw)
    assert d["iso"] == "2026-01-02T03:04:05+00:00"
    assert d["deviation_min"] is None
    assert d["status"] == ["invalid value", "invalid clock status"]


def test_daylight_savings_pattern_names_its_wildcards():
    raw = b"\xff\xff\x03\xfe\x07\x02\x00\x00\x00\x80\x00\xff"
    d = describe_datetime(raw)
    assert d["iso"] is None
    assert d["unspecified"] == ["year"]
    assert d["text"].startswith("****-03-last 02:00:00 weekday 7")
    assert d["status"] is None


def test_twelve_byte_octet_string_elsewhere_is_a_date_time_only_when_it_looks_like_one():
    assert looks_like_datetime(CLOCK_RAW)
    assert describe(b"\x09\x0c" + CLOCK_RAW, 1, 2)["type"] == "date-time"
    not_a_date = b"ABCDEFGHIJKL"
    assert not looks_like_datetime(not_a_date)
    assert describe(b"\x09\x0c" + not_a_date, 1, 2)["text"] == "ABCDEFGHIJKL"


def test_scaler_unit():
    d = describe(b"\x02\x02\x0f\xff\x16\x23", 3, 3)
    assert (d["type"], d["scaler"], d["unit"], d["text"]) == ("scaler_unit", -1, "V", "10^-1 V")
    # the same structure elsewhere is a plain structure
    assert describe(b"\x02\x02\x0f\xff\x16\x23", 1, 2)["type"] == "structure"


def test_enums_by_name_and_unknown_enums_by_number():
    assert describe(b"\x16\x01", 70, 3)["text"] == "1 (connected)"
    assert describe(b"\x16\x02", 8, 9)["name"] == "mains frequency 50 Hz"
    assert describe(b"\x16\x09", 70, 3)["text"] == "enum 9"
    assert describe(b"\x16\x01", 1, 2)["text"] == "enum 1"


def test_structures_item_by_item_with_their_enums():
    d = describe(b"\x02\x02\x16\x02\x16\x03", 111, 2)
    assert d["type"] == "structure"
    assert [i["name"] for i in d["items"]] == ["prepayment mode", "closed"]
    assert d["text"] == "{2 (prepayment mode), 3 (closed)}"
    nested = describe(b"\x01\x02\x02\x02\x12\x00\x07\x0a\x02ab\x00", 1, 2)
    assert nested["value"] == [[7, "ab"], None]
    assert nested["text"] == "[{7, ab}, null]"


def test_trailing_bytes_are_shown():
    assert describe(b"\x12\x00\x07\x00\x00")["trailing_bytes"] == "0000"


def test_read_tool_json_against_another_vendors_meter(capsys):
    quirks = Quirks(trailing={"0.0.96.1.0.255": b"\x00\x00"})
    with QuirkyMeter(quirks) as meter:
        code = cli_read.main_read(
            [
                f"127.0.0.1:{meter.port}",
                "0.0.1.0.0.255",
                "0.0.1.0.0.255:8:5",
                "0.0.1.0.0.255:8:9",
                "1.0.32.7.0.255",
                "1.0.32.7.0.255:3:3",
                "0.0.96.3.10.255:70:3",
                "0.0.19.0.0.255:111:2",
                "0.0.96.1.0.255",
                "9.9.9.9.9.255",
                "--json",
            ]
        )
    out = json.loads(capsys.readouterr().out)
    assert code == 1  # 9.9.9.9.9.255 is not on that meter
    by = {(r["obis"], r["attribute"]): r for r in out["readings"]}
    clock = by[("0.0.1.0.0.255", 2)]
    assert (clock["iso"], clock["deviation_min"]) == ("2026-03-29T02:30:00+01:00", -60)
    assert by[("0.0.1.0.0.255", 5)]["unspecified"] == ["year"]
    assert by[("0.0.1.0.0.255", 9)]["name"] == "mains frequency 50 Hz"
    assert (by[("1.0.32.7.0.255", 2)]["value"], by[("1.0.32.7.0.255", 2)]["unit"]) == (230.0, "V")
    assert by[("1.0.32.7.0.255", 3)]["text"] == "10^-1 V"
    assert by[("0.0.96.3.10.255", 3)]["name"] == "connected"
    assert by[("0.0.19.0.0.255", 2)]["text"] == "{2 (prepayment mode), 2 (active)}"
    assert by[("0.0.96.1.0.255", 2)]["value"] == "QRK00001"
    assert "9.9.9.9.9.255" in out["errors"]
    assert any("2 trailing bytes" in w for w in out["warnings"])


def test_read_tool_text_for_a_person(capsys):
    with QuirkyMeter() as meter:
        code = cli_read.main_read(
            [f"127.0.0.1:{meter.port}", "0.0.1.0.0.255", "1.0.1.8.0.255", "0.0.96.3.10.255:70:3"]
        )
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines == [
        "0.0.1.0.0.255      2026-03-29T02:30:00+01:00 (deviation -60 min; "
        "status: daylight saving active)",
        "1.0.1.8.0.255      123450 Wh",
        "0.0.96.3.10.255    1 (connected)",
    ]

import json
import re
from datetime import datetime, timezone

from odoo import api, fields, models
from odoo.tools import float_repr, format_datetime, formatLang

from ..services import ingest
from ..services.obis import OBIS_CLOCK, OBIS_CREDIT, OBIS_RELAY

ISO_DATETIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$"
)


def _decimals(number, most=3):
    """The decimals a number needs to be shown as read (at most ``most``)."""
    text = float_repr(float(number), most).rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def iso_datetime(value):
    """A date-time the bridge sent as ISO 8601 text, as a naive UTC datetime, or None."""
    if not isinstance(value, str) or not ISO_DATETIME_RE.match(value.strip()):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed


def dlms_datetime_text(hex_value):
    """A COSEM date-time (12 bytes, as hex) as readable text; the hex if it is not one."""
    try:
        raw = bytes.fromhex(hex_value)
    except ValueError:
        return hex_value
    if len(raw) != 12:
        return hex_value
    year = int.from_bytes(raw[0:2], "big")
    month, day, hour, minute, second = raw[2], raw[3], raw[5], raw[6], raw[7]
    if year == 0xFFFF or not (1 <= month <= 12 and 1 <= day <= 31) or hour > 23:
        return hex_value
    deviation = int.from_bytes(raw[9:11], "big", signed=True)
    note = "" if deviation in (0, -0x8000) else f" (deviation {deviation} min)"
    return f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}{note}"


class SmartpmReadingTaskResult(models.Model):
    """One value (or one failure) a reading task brought back."""

    _name = "smartpm.reading.task.result"
    _description = "Reading task result"
    _order = "task_id, meter_id, reading_time, obis, id"

    task_id = fields.Many2one("smartpm.reading.task", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="task_id.company_id", store=True, index=True)
    meter_id = fields.Many2one("smartpm.meter", required=True, ondelete="cascade", index=True)
    tenant_id = fields.Many2one(related="meter_id.tenant_id")
    job_id = fields.Many2one("smartpm.meter.job", ondelete="set null", index="btree_not_null")
    run = fields.Integer(readonly=True, help="The task's run this value came from.")
    obis = fields.Char(string="OBIS")
    label = fields.Char()
    profile_obis = fields.Char(help="The profile this value is a row of.")
    raw_value = fields.Char(string="Raw value (JSON)")  # Json would turn 0 into False
    value = fields.Float(
        string="Numeric value", compute="_compute_value", store=True, digits=(16, 4)
    )
    value_text = fields.Char(string="Raw text", compute="_compute_value", store=True)
    value_display = fields.Char(string="Value", compute="_compute_value_display")
    is_numeric = fields.Boolean(compute="_compute_value", store=True)
    unit = fields.Char()
    reading_time = fields.Datetime()
    state = fields.Selection([("ok", "Read"), ("error", "Failed")], default="ok", required=True)
    error = fields.Char(string="Reason")
    saved = fields.Boolean(readonly=True, copy=False)

    @api.depends("raw_value", "obis")
    def _compute_value(self):
        for res in self:
            try:
                raw = json.loads(res.raw_value) if res.raw_value else None
            except ValueError:
                raw = res.raw_value
            numeric = isinstance(raw, (int, float))  # bool is an int: relay state as 1/0
            res.is_numeric = numeric
            res.value = float(raw) if numeric else 0.0
            if isinstance(raw, bool):
                res.value_text = str(raw).lower()
            elif res.obis == OBIS_CLOCK and isinstance(raw, str):
                res.value_text = dlms_datetime_text(raw)
            else:
                res.value_text = "" if raw is None else str(raw)

    @api.depends("raw_value", "obis", "unit", "label")
    @api.depends_context("tz", "lang")
    def _compute_value_display(self):
        """The value as a person reads it: local date-time, relay state in words, number
        with its unit."""
        for res in self:
            try:
                raw = json.loads(res.raw_value) if res.raw_value else None
            except ValueError:
                raw = res.raw_value
            res.value_display = res._display_value(raw)

    def _display_value(self, raw):
        self.ensure_one()
        if raw is None:
            return ""
        if self.obis == OBIS_RELAY and isinstance(raw, (bool, int)):
            return self.env._("Connected") if raw else self.env._("Disconnected")
        if isinstance(raw, bool):
            return self.env._("Yes") if raw else self.env._("No")
        if self.obis == OBIS_CREDIT and isinstance(raw, (int, float)):
            # in kWh, as the meter's "last known credit": the object counts Wh unless the
            # unit says kWh (docs/meter-contract.md, job_results.apply_result)
            kwh = raw if (self.unit or "").lower() == "kwh" else raw / 1000.0
            return f"{formatLang(self.env, kwh, digits=_decimals(kwh))} kWh"
        if isinstance(raw, (int, float)):
            text = formatLang(self.env, raw, digits=_decimals(raw))
            return f"{text} {self.unit}" if self.unit else text
        when = iso_datetime(raw)
        if when:
            return format_datetime(self.env, when, tz=self.env.context.get("tz") or "UTC")
        if self.obis == OBIS_CLOCK and isinstance(raw, str):
            return dlms_datetime_text(raw)
        return str(raw)

    def action_save(self):
        """Store these values as readings; the same value saved twice is stored once."""
        self.check_access("write")
        todo = self.filtered(lambda r: r.state == "ok" and r.is_numeric and not r.saved)
        if not todo:
            return True
        ingest.ingest(
            self.env(su=True),
            [
                {
                    "meter_id": r.meter_id.id,
                    "obis": r.obis,
                    "value": r.value,
                    "unit": r.unit,
                    "time": r.reading_time,
                    "source": "task",
                    "job_id": r.job_id.id or None,
                }
                for r in todo
            ],
            [],
        )
        todo.write({"saved": True})
        for task in todo.task_id:
            task.message_post(
                body=self.env._("%s value(s) saved as readings.", len(todo & task.result_ids))
            )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": self.env._("Data saved"),
                "message": self.env._("%s value(s) stored as readings.", len(todo)),
                "type": "success",
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

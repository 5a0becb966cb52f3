from odoo import fields, models


class SmartpmMeter(models.Model):
    _inherit = "smartpm.meter"

    # Written by job_queue.claim() in SQL for every meter it hands a job of. Beyond the
    # information, the write itself matters: a concurrent claimer that still sees the meter
    # free in its (older) snapshot then fails to lock the row with a serialization error and
    # its request is retried, instead of handing out a second job of the meter.
    job_claimed_at = fields.Datetime(
        "Last job handed out",
        readonly=True,
        copy=False,
        help="When a bridge was last given a job of this meter.",
    )

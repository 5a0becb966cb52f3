import math
import re
import secrets
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.osv import expression
from odoo.tools.float_utils import float_round

from ..services import (
    calendars,
    emergency,
    engine,
    meter_profile,
    receipt,
    sale_info,
    standing_charge,
    tou,
)
from ..services.obis import BILLING_OBJECTS, ENERGY_IMPORT, LOAD_PROFILE
from ..services.push import longest_closed, parse_windows
from ..services.sale_info import format_money

SERIAL_RE = re.compile(r"^[A-Z0-9][A-Z0-9-]{2,31}$")
HEX_KEY_RE = re.compile(r"^[0-9A-F]{32}$")
HEX_TITLE_RE = re.compile(r"^[0-9A-F]{16}$")
# Only the owner sees meter secrets; a bridge gets a meter's association keys only inside
# the jobs it claimed (_prepare_bridge_values, in sudo), and never the token key.
SECRET_GROUPS = "smartpm_prepay.group_manager"
PUBLIC_CLIENT = 16  # DLMS public client: never authenticates
MANAGEMENT_CLIENT = 1


class BigInteger(fields.Integer):
    """An integer in an int8 column: DLMS invocation counters are unsigned 32-bit (the
    Green Book's security header carries 4 octets), beyond int4's 2**31 - 1."""

    _column_type = ("int8", "int8")


# selling
THRESHOLD_PRIORITY = 20
PUSH_RECONCILE_MIN = 1440  # event-log reads of meters in push mode: daily
PUSH_MARGIN_PARAM = "smartpm_prepay.push_margin_s"
PUSH_MARGIN_DEFAULT_S = 120
PUSH_DESTINATION_RE = re.compile(r"^[A-Za-z0-9.\-\[\]:]{1,253}:\d{1,5}$")
# A meter not heard from for longer may not get its credit soon: the sale says so.
CONTACT_WARNING_AFTER = timedelta(days=1)
# Purchases sold but not yet on the meter (its last known credit does not count them).
UNDELIVERED_STATES = ("paid", "queued")

# scheduled reads and pings
SCHEDULE_PRIORITY = {"events": 55, "billing": 60, "profile": 70, "clock": 75, "ping": 80}
PROFILE_OBJECT = {"obis": LOAD_PROFILE, "ic": 7, "attribute": 2}
PROFILE_MAX_DAYS = 7  # the meter keeps 672 quarter-hours
DEFAULT_BATCH = 1000
DEFAULT_MAX_BACKLOG = 5000

# load-trip recovery (the bridge and the meter contract take the same ranges)
MAX_RECONNECT_DELAY_S = 86400
MAX_RECONNECT_ATTEMPTS = 255
LOAD_RECOVERY_FIELDS = {
    "load_recovery_override",
    "load_reconnect_delay_s",
    "load_reconnect_attempts",
    "tariff_id",
    "tenant_id",
}

# meter search at the register
SEARCH_LIMIT = 20
SEARCH_LIMIT_MAX = 50
# a phone number is searched by its digits ("555 0102" finds "+1 555-0102")
PHONE_MIN_DIGITS = 4
PHONE_QUERY = re.compile(r"^[\d\s+().\-/]+$")


class SmartpmMeter(models.Model):
    _name = "smartpm.meter"
    _description = "Smart meter"
    _inherit = ["mail.thread", "mail.activity.mixin", "pos.load.mixin"]
    _rec_name = "serial_number"
    _order = "serial_number"
    _check_company_auto = True

    serial_number = fields.Char(required=True, index="trigram", tracking=True, copy=False)
    meter_model = fields.Char(string="Meter model", default="SmartPM 1100Net")
    profile_id = fields.Many2one(
        "smartpm.meter.profile",
        string="Meter profile",
        default=lambda self: self.env.ref(
            "smartpm_prepay.meter_profile_smartpm", raise_if_not_found=False
        ),
        tracking=True,
        check_company=True,
        help="The meter model's DLMS set-up and object map (Configuration > Meter profiles): "
        "which OBIS code holds credit, the relay, the logs... Empty: the SmartPM codes.",
    )
    active = fields.Boolean(default=True, tracking=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, index=True
    )
    state = fields.Selection(
        [
            ("draft", "Draft"),
            ("active", "Active"),
            ("disconnected", "Disconnected"),
            ("decommissioned", "Decommissioned"),
        ],
        default="draft",
        required=True,
        tracking=True,
        index=True,
    )
    tenant_id = fields.Many2one(
        "res.partner",
        domain=[("is_tenant", "=", True)],
        index=True,
        tracking=True,
        ondelete="restrict",
        check_company=True,
    )
    tenant_number = fields.Char(related="tenant_id.tenant_number")
    assignment_ids = fields.One2many(
        "smartpm.meter.assignment", "meter_id", string="Tenant history"
    )
    transformer_id = fields.Many2one(
        "smartpm.transformer", index=True, tracking=True, check_company=True
    )
    line_id = fields.Many2one(related="transformer_id.line_id", store=True, index=True)
    site_id = fields.Many2one(related="transformer_id.site_id", store=True, index=True)
    tariff_id = fields.Many2one("smartpm.tariff", tracking=True, check_company=True)
    # time-of-use (issue 17 §6, services/tou.py, docs/meter-contract.md "Money mode")
    credit_mode = fields.Selection(
        [("kwh", "kWh"), ("money", "Money")],
        string="Credit mode",
        required=True,
        default="kwh",
        tracking=True,
        help="How the meter holds credit. kWh: tokens carry energy (flat and block tariffs). "
        "Money: tokens carry currency and the meter charges each kWh at the price of the "
        "time-of-use band in force (required by a time-of-use tariff). It is the meter's "
        "own set-up: a Manager sets it before the first sale.",
    )
    credit_money = fields.Float(
        string="Last known credit (money)",
        digits=(16, 3),
        readonly=True,
        copy=False,
        help="Money-mode meters: the credit the meter last reported, in the tariff's currency.",
    )
    tou_calendar_active = fields.Char(
        string="Active price calendar",
        readonly=True,
        copy=False,
        help="The time-of-use calendar the meter runs, as it read it back.",
    )
    tou_calendar_passive = fields.Char(
        string="Planned price calendar",
        readonly=True,
        copy=False,
        help="The next time-of-use calendar the meter holds, switched on by itself at its "
        "activation time.",
    )

    # Connection to the meter (read by meter_bridge from the job it claims)
    connection_type = fields.Selection(
        [("tcp", "TCP/IP"), ("serial", "Serial (RS-485 / optical)")],
        default="tcp",
        required=True,
    )
    host = fields.Char(help="IP address or host name of the meter or its modem.")
    port = fields.Integer(default=4059)
    framing = fields.Selection(
        [("wrapper", "IEC 62056-47 wrapper"), ("hdlc", "HDLC")],
        default="wrapper",
        required=True,
        help="Serial connections always use HDLC.",
    )
    device = fields.Char(string="Serial device", help="For example /dev/ttyUSB0.")
    baudrate = fields.Integer(default=9600)
    # Prepaid meters are locked: credit, relay, thresholds and clock need the management
    # client with HLS-GMAC (docs/meter-contract.md), so a new meter starts there, with
    # random keys, and the owner enters the vendor's keys.
    client_address = fields.Integer(
        default=MANAGEMENT_CLIENT,
        help="DLMS client address of the association Odoo's bridges use: 1 = management "
        "(needed for credit and relay commands), 16 = public client (no authentication, "
        "identification only).",
    )
    server_logical_address = fields.Integer(default=1)
    server_physical_address = fields.Integer(default=17)
    auth = fields.Selection(
        [("none", "None"), ("lls", "Low (password)"), ("hls_gmac", "High (HLS-GMAC)")],
        string="Authentication",
        default="hls_gmac",
        required=True,
        help="HLS-GMAC (security suite 0, authenticated and encrypted APDUs) with the "
        "meter's authentication and encryption keys: what locked prepaid meters require to "
        "take credit and relay commands. Low (password) and None can only read.",
    )
    auth_password = fields.Char(string="LLS password", groups=SECRET_GROUPS, copy=False)
    # Keys: random for each new meter unless the owner enters the vendor's (issue 14).
    auth_key = fields.Char(
        string="Authentication key (hex)",
        groups=SECRET_GROUPS,
        copy=False,
        default=lambda self: self._generate_key(),
    )
    encryption_key = fields.Char(
        string="Encryption key (hex)",
        groups=SECRET_GROUPS,
        copy=False,
        default=lambda self: self._generate_key(),
    )
    token_key = fields.Char(
        string="Token key (hex)",
        groups=SECRET_GROUPS,
        copy=False,
        default=lambda self: self._generate_key(),
        help="AES-128 key the meter checks credit tokens with (16 bytes in hex). Odoo signs "
        "every credit token with it; bridges never see it.",
    )
    system_title = fields.Char(
        string="Meter system title (hex)",
        groups=SECRET_GROUPS,
        help="The meter's own 8-byte system title (HLS-GMAC), from its nameplate or the "
        "vendor's key sheet. Optional: the meter sends it when the bridge associates.",
    )
    invocation_counter = BigInteger(
        groups=SECRET_GROUPS,
        copy=False,
        help="Highest HLS-GMAC invocation counter used; a new association continues above it.",
    )

    # Thresholds and limits (pushed to the meter by jobs)
    low_credit_kwh = fields.Float(string="Low-credit alarm (kWh)", default=5.0, tracking=True)
    trip_kwh = fields.Float(string="Trip threshold (kWh)", default=0.0, tracking=True)
    # a money-mode meter (time of use) holds credit in currency: its thresholds too
    low_credit_money = fields.Float(
        string="Low-credit alarm (money)",
        digits=(16, 3),
        default=1.0,
        tracking=True,
        help="Money-mode meters, own thresholds: the credit in currency at or below which "
        "the meter warns the tenant.",
    )
    trip_money = fields.Float(
        string="Trip threshold (money)",
        digits=(16, 3),
        default=0.0,
        tracking=True,
        help="Money-mode meters, own thresholds: the credit in currency at or below which the "
        "meter opens its relay.",
    )
    load_limit_w = fields.Integer(string="Load limit (W)", default=0, tracking=True)

    # Last known state, filled from job results
    credit_kwh = fields.Float(string="Last known credit (kWh)", readonly=True, copy=False)
    relay_state = fields.Selection(
        [("unknown", "Unknown"), ("connected", "Connected"), ("disconnected", "Disconnected")],
        default="unknown",
        readonly=True,
        copy=False,
        tracking=True,
    )
    online_state = fields.Selection(
        [("unknown", "Unknown"), ("online", "Online"), ("offline", "Offline")],
        default="unknown",
        readonly=True,
        copy=False,
        index=True,
    )
    last_seen = fields.Datetime(readonly=True, copy=False)
    date_activated = fields.Datetime(
        string="Activated on",
        readonly=True,
        copy=False,
        help="When the meter was first put in service; a meter that has not answered for the "
        "offline threshold since then is offline.",
    )
    tenant_label = fields.Char(string="Tenant ", compute="_compute_tenant_label")
    note = fields.Text()
    job_ids = fields.One2many("smartpm.meter.job", "meter_id", string="Jobs")
    reading_ids = fields.One2many("smartpm.reading", "meter_id", string="Readings")
    alarm_ids = fields.One2many("smartpm.alarm", "meter_id", string="Alarms")
    job_count = fields.Integer(compute="_compute_job_count")

    # Selling
    last_transfer_number = fields.Integer(
        readonly=True, copy=False, help="Last credit transfer number given to this meter."
    )
    effective_tariff_id = fields.Many2one(
        "smartpm.tariff", compute="_compute_effective_tariff", string="Tariff in force"
    )
    threshold_override = fields.Boolean(
        string="Own thresholds",
        help="Use the thresholds below instead of the tariff's.",
    )
    effective_low_credit_kwh = fields.Float(
        string="Low-credit alarm in force",
        compute="_compute_effective_thresholds",
        help="In the unit of the meter's credit: kWh, or currency on a money-mode meter.",
    )
    effective_trip_kwh = fields.Float(
        string="Trip threshold in force",
        compute="_compute_effective_thresholds",
        help="In the unit of the meter's credit: kWh, or currency on a money-mode meter.",
    )
    purchase_ids = fields.One2many("smartpm.credit.purchase", "meter_id", string="Purchases")
    purchase_count = fields.Integer(compute="_compute_purchase_count")

    tenant_name = fields.Char(related="tenant_id.name", string="Tenant name")
    # Monitoring
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

    missed_ping_count = fields.Integer(
        readonly=True, copy=False, help="Scheduled pings missed in a row."
    )
    # DLMS push (issue 18, services/push.py): the meter connects out to a bridge's listener
    push_enabled = fields.Boolean(
        string="Push mode",
        tracking=True,
        help="The meter pushes its events at once and a heartbeat on its interval to the "
        "push destination (DLMS DataNotification, ciphered with its keys): alarms arrive in "
        "seconds, heartbeats replace pings, and its event log is read once a day only, as a "
        "reconciliation. Needs HLS-GMAC keys and the meter's system title.",
    )
    push_destination = fields.Char(
        string="Push destination",
        help="host:port the meter connects to: the address of the bridges' push listener "
        "(meter-bridge listen), as the meter reaches it (e.g. a public address over GPRS).",
    )
    push_heartbeat_s = fields.Integer(
        string="Heartbeat interval (s)",
        default=900,
        help="Seconds between the meter's heartbeat pushes (0 = none). A meter in push mode "
        "silent for longer than this plus the push margin (setting) is communication-lost.",
    )
    push_retries = fields.Integer(
        string="Push retries",
        default=10,
        help="How many more times the meter tries a push the head end did not take.",
    )
    push_repetition_delay_s = fields.Integer(
        string="Push retry delay (s)",
        default=30,
        help="Seconds the meter waits before it tries a push again.",
    )
    push_randomisation_s = fields.Integer(
        string="Push randomisation (s)",
        default=0,
        help="The meter waits a random time up to this before its first attempt, so that "
        "meters that saw the same event (a power cut) do not all connect at once.",
    )
    push_windows = fields.Char(
        string="Communication windows",
        help="When the meter may connect to push, e.g. 06:00-08:00, 18:00-20:00 (times of "
        "the meter's day, UTC; at most 8 windows, none across midnight). Empty: at any "
        "time. Outside its windows the meter keeps its events and heartbeats and pushes "
        "them when the next window opens (push setups' communication_window); its "
        "communication-lost check allows the longest closed gap on top of the heartbeat.",
    )
    push_enabled_at = fields.Datetime(
        readonly=True, copy=False, help="When push mode was last turned on."
    )
    push_last_at = fields.Datetime(
        string="Last push", readonly=True, copy=False, help="When the meter last pushed."
    )
    push_invocation_counter = BigInteger(
        readonly=True,
        copy=False,
        help="Highest invocation counter of an accepted push: a push at or below it is a "
        "replay and is refused.",
    )
    consumption_ids = fields.One2many("smartpm.consumption.daily", "meter_id")
    # move-out and replacement (issue 16 §3-4, models/move_out.py)
    move_out_ids = fields.One2many("smartpm.move.out", "meter_id", string="Move-outs")
    replaces_id = fields.Many2one(
        "smartpm.meter",
        readonly=True,
        index="btree_not_null",
        help="The meter this one replaced: its tenant and credit came from it.",
    )
    replaced_by_id = fields.Many2one(
        "smartpm.meter",
        string="Replaced by",
        readonly=True,
        index="btree_not_null",
        help="The meter that took this one's tenant and credit (this one is decommissioned).",
    )

    _sql_constraints = [
        # concurrent creations; create() and write() name the holder before this fires
        (
            "serial_number_uniq",
            "unique(serial_number)",
            "A meter with this serial number is already registered.",
        ),
        (
            "port_range",
            "CHECK(port IS NULL OR (port >= 0 AND port <= 65535))",
            "The TCP port must be between 1 and 65535.",
        ),
        (
            "thresholds_order",
            "CHECK(low_credit_kwh >= trip_kwh)",
            "The low-credit alarm must not be below the trip threshold.",
        ),
        (
            "thresholds_money_order",
            "CHECK(low_credit_money >= trip_money)",
            "The low-credit alarm must not be below the trip threshold.",
        ),
        ("load_limit_positive", "CHECK(load_limit_w >= 0)", "The load limit cannot be negative."),
    ]

    def init(self):
        # pushes are recognised by the system title (services/push.py): one meter in push
        # mode per title, also under concurrent writes
        self.env.cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS smartpm_meter_push_title_uniq
                ON smartpm_meter (upper(system_title)) WHERE push_enabled AND active
            """
        )

    # ---------------------------------------------------------------- constraints
    @api.constrains("serial_number")
    def _check_serial_number(self):
        for meter in self:
            if not SERIAL_RE.match(meter.serial_number or ""):
                raise ValidationError(
                    self.env._(
                        "Serial number %(serial)s is not valid: use 3 to 32 capital letters, "
                        "digits or dashes.",
                        serial=meter.serial_number,
                    )
                )

    def _serial_clash_message(self, serial):
        """The message naming the meter already registered under ``serial``, or None."""
        if not serial:
            return None
        serial = serial.strip().upper()
        ids = [i for i in self.ids if isinstance(i, int)] + [
            r._origin.id for r in self if r._origin.id
        ]
        clash = (
            self.sudo()
            .with_context(active_test=False)
            .search([("serial_number", "=", serial), ("id", "not in", ids)], limit=1)
        )
        if not clash:
            return None
        if clash.company_id not in self.env.companies:
            return self.env._(
                "Meter %(serial)s is already registered by another company.", serial=serial
            )
        if clash.tenant_id:
            return self.env._(
                "Meter %(serial)s is already registered for %(tenant)s.",
                serial=serial,
                tenant=clash._tenant_text(clash.tenant_id),
            )
        if not clash.active:
            return self.env._("Meter %(serial)s is already registered (archived).", serial=serial)
        return self.env._(
            "Meter %(serial)s is already registered, without a tenant.", serial=serial
        )

    @api.model
    def _tenant_text(self, tenant):
        """A tenant as people name it: "Amina Okafor (T000001)"."""
        if not tenant:
            return ""
        number = tenant.sudo().tenant_number
        return f"{tenant.sudo().name} ({number})" if number else tenant.sudo().name or ""

    def _check_serials_free(self, vals_list):
        """Refuse a serial number already registered (or given twice), naming its holder."""
        seen = set()
        for vals in vals_list:
            serial = vals.get("serial_number")
            if not serial:
                continue
            if serial in seen:
                raise ValidationError(
                    self.env._("Serial number %(serial)s is given to two meters.", serial=serial)
                )
            seen.add(serial)
            message = self._serial_clash_message(serial)
            if message:
                raise ValidationError(message)

    @api.onchange("serial_number")
    def _onchange_serial_number(self):
        # where the user types, not only when the tenant is saved
        message = self._serial_clash_message(self.serial_number)
        if message:
            return {
                "warning": {
                    "title": self.env._("Serial number already registered"),
                    "message": message,
                }
            }
        return None

    @api.depends("tenant_id.name", "tenant_id.tenant_number")
    def _compute_tenant_label(self):
        for meter in self:
            tenant = meter.tenant_id
            if tenant and not tenant.tenant_number and not tenant._origin:
                # in the dialog of a tenant not saved yet
                meter.tenant_label = self.env._(
                    "%s (number given on save)", tenant.name or self.env._("new tenant")
                )
            else:
                meter.tenant_label = self._tenant_text(tenant)

    @api.constrains(
        "connection_type",
        "host",
        "port",
        "device",
        "baudrate",
        "framing",
        "client_address",
        "server_logical_address",
        "server_physical_address",
    )
    def _check_connection(self):
        for meter in self:
            if meter.connection_type == "tcp":
                if not meter.host or not (0 < meter.port <= 65535):
                    raise ValidationError(
                        self.env._(
                            "Meter %(serial)s: a TCP connection needs a host and a port "
                            "between 1 and 65535.",
                            serial=meter.serial_number,
                        )
                    )
            else:
                if not meter.device:
                    raise ValidationError(
                        self.env._(
                            "Meter %(serial)s: a serial connection needs a device.",
                            serial=meter.serial_number,
                        )
                    )
                if meter.framing != "hdlc":
                    raise ValidationError(self.env._("Serial connections use HDLC framing."))
                if meter.baudrate not in (300, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200):
                    raise ValidationError(self.env._("Unsupported baud rate %s.", meter.baudrate))
            if not (0 < meter.client_address <= 0x7F):
                raise ValidationError(
                    self.env._("The DLMS client address must be between 1 and 127.")
                )
            for value in (meter.server_logical_address, meter.server_physical_address):
                if not (0 <= value <= 0x3FFF):
                    raise ValidationError(
                        self.env._("DLMS server addresses must be between 0 and 16383.")
                    )

    @api.constrains(
        "auth", "auth_password", "auth_key", "encryption_key", "system_title", "client_address"
    )
    def _check_auth(self):
        for meter in self.sudo():
            if meter.auth == "lls" and not meter.auth_password:
                raise ValidationError(
                    self.env._(
                        "Meter %(serial)s: low-level security needs a password.",
                        serial=meter.serial_number,
                    )
                )
            if meter.auth != "none" and meter.client_address == PUBLIC_CLIENT:
                raise ValidationError(
                    self.env._(
                        "Meter %(serial)s: the public client (16) never authenticates; "
                        "%(auth)s uses the management client (usually 1).",
                        serial=meter.serial_number,
                        auth=dict(meter._fields["auth"]._description_selection(self.env))[
                            meter.auth
                        ],
                    )
                )
            if meter.auth == "hls_gmac":
                for fname in ("auth_key", "encryption_key"):
                    key = meter[fname]
                    if not HEX_KEY_RE.match((key or "").upper()):
                        raise ValidationError(
                            self.env._(
                                "Meter %(serial)s: HLS-GMAC needs the meter's %(key)s, "
                                "32 hexadecimal digits (16 bytes); %(problem)s.",
                                serial=meter.serial_number,
                                key=meter._fields[fname]._description_string(self.env),
                                problem=self.env._("it is %(len)s characters long", len=len(key))
                                if key
                                else self.env._("it is empty"),
                            )
                        )
                if meter.system_title and not HEX_TITLE_RE.match(meter.system_title.upper()):
                    raise ValidationError(
                        self.env._(
                            "Meter %(serial)s: the meter system title is 16 hexadecimal "
                            "digits (8 bytes), or empty to take the one the meter sends.",
                            serial=meter.serial_number,
                        )
                    )

    @api.model
    def _set_default_profile(self):
        """Install / upgrade: meters made before profiles get the SmartPM one (the codes
        they were always read with)."""
        profile = self.env.ref("smartpm_prepay.meter_profile_smartpm", raise_if_not_found=False)
        if profile:
            self.with_context(active_test=False).search([("profile_id", "=", False)]).write(
                {"profile_id": profile.id}
            )

    @api.onchange("profile_id")
    def _onchange_profile_id(self):
        """A meter of another model takes that model's addresses, framing and auth."""
        if self.profile_id:
            self.update(meter_profile.meter_defaults(self.profile_id))

    @api.onchange("auth")
    def _onchange_auth(self):
        """Authenticated associations are the management client's, not the public one's."""
        if self.auth != "none" and self.client_address == PUBLIC_CLIENT:
            self.client_address = MANAGEMENT_CLIENT

    # ---------------------------------------------------------------- create / write
    @api.model
    def _normalize_vals(self, vals):
        if vals.get("serial_number"):
            vals["serial_number"] = vals["serial_number"].strip().upper()
        if vals.get("connection_type") == "serial":
            vals.setdefault("framing", "hdlc")
        return vals

    @api.model_create_multi
    def create(self, vals_list):
        Partner = self.env["res.partner"].sudo()
        for vals in vals_list:
            if vals.get("tenant_id") and "load_limit_w" not in vals:
                vals["load_limit_w"] = Partner.browse(vals["tenant_id"]).load_limit_w
        vals_list = [meter_profile.with_profile_defaults(self.env, dict(v)) for v in vals_list]
        vals_list = [self._normalize_vals(v) for v in vals_list]
        for vals in vals_list:
            # a meter declared without authentication is read as the public client
            if vals.get("auth") == "none":
                vals.setdefault("client_address", PUBLIC_CLIENT)
        self._check_serials_free(vals_list)
        now = fields.Datetime.now()
        for vals in vals_list:
            if vals.get("state") in ("active", "disconnected"):
                vals.setdefault("date_activated", now)
        meters = super().create(vals_list)
        meters.filtered("tenant_id")._open_assignments()
        pushing = meters.filtered("push_enabled")
        if pushing:  # created in push mode: the meter is told at once, the heartbeat clock runs
            pushing.sudo().write({"push_enabled_at": fields.Datetime.now()})
            pushing._push_push_setup()
        calendars.push(self.env, meters)  # a meter created active gets them at once
        return meters

    def write(self, vals):
        # the next sale's transfer number follows the last one: only the vending engine moves it
        engine.check_fields(
            self,
            vals,
            {"last_transfer_number", "replaces_id", "replaced_by_id"},
            self.env._("Meter"),
        )
        if vals.get("tenant_id") and "load_limit_w" not in vals:
            # a meter moving to a tenant with a load limit takes the tenant's limit
            limit = self.env["res.partner"].sudo().browse(vals["tenant_id"]).load_limit_w
            if limit:
                vals = dict(vals, load_limit_w=limit)
        watch_thresholds = {
            "low_credit_kwh",
            "trip_kwh",
            "low_credit_money",
            "trip_money",
            "credit_mode",
            "threshold_override",
            "tariff_id",
            "tenant_id",
        } & set(vals)
        before = {m.id: m._get_thresholds() for m in self} if watch_thresholds else {}
        load_before = {m.id: m.load_limit_w for m in self} if "load_limit_w" in vals else {}
        recovery_before = self._smartpm_load_recovery_before(vals)
        emergency_before = self._smartpm_emergency_before(vals)
        push_before = self._smartpm_push_before(vals)
        charge_before = (
            standing_charge.settings_before(self) if {"tariff_id", "tenant_id"} & set(vals) else {}
        )
        self._smartpm_check_credit_mode_change(vals)
        vals = self._normalize_vals(dict(vals))
        if vals.get("serial_number"):
            if len(self) > 1:
                raise ValidationError(self.env._("Two meters cannot have the same serial number."))
            self._check_serials_free([vals])
        if vals.get("state") in ("active", "disconnected") and "date_activated" not in vals:
            never = self.filtered(lambda m: not m.date_activated)
            if never:
                never.write({"date_activated": fields.Datetime.now()})
        new_tenant = vals.get("tenant_id")
        moving = self.browse()
        if "tenant_id" in vals:
            moving = self.filtered(lambda m: m.tenant_id.id != (new_tenant or False))
            if new_tenant and moving.filtered(lambda m: m.state == "decommissioned"):
                raise UserError(
                    self.env._("A decommissioned meter cannot be assigned to a tenant.")
                )
            moving._close_assignments()
        res = super().write(vals)
        if new_tenant:
            moving._open_assignments()
        if before:
            self.filtered(lambda m: m._get_thresholds() != before[m.id])._push_thresholds()
        if load_before:
            self.filtered(lambda m: m.load_limit_w != load_before[m.id])._push_load_limit()
        self._smartpm_push_load_recovery_changed(recovery_before)
        emergency.push_changed(self, emergency_before)
        self._smartpm_push_setup_changed(push_before)
        standing_charge.push_changed(self, charge_before)
        if {"state", "credit_mode", "tariff_id", "tenant_id"} & set(vals):
            # activated (or reconnected), its credit unit changed (the friendly limit is in
            # it), another tariff in force (another TOU calendar): only what changed is pushed
            calendars.push(self.env, self)
        return res

    # ---------------------------------------------------------------- credit mode (TOU)
    def _smartpm_check_credit_mode_change(self, vals):
        """The credit mode is the meter's set-up: a Manager's, before the first sale, with no
        tenant on the meter (their credit and thresholds are in the unit it has now)."""
        if "credit_mode" not in vals:
            return
        changing = self.filtered(lambda m: m.credit_mode != vals["credit_mode"])
        if not changing:
            return
        if not self.env.su and not self.env.user.has_group("smartpm_prepay.group_manager"):
            raise UserError(
                self.env._(
                    "Only a SmartPM Manager may change the credit mode of meter %s.",
                    ", ".join(changing.mapped("serial_number")),
                )
            )
        sold = changing.filtered(lambda m: m.sudo().purchase_ids)
        if sold:
            raise UserError(
                self.env._(
                    "Meter %s already holds credit sold in its current mode: its credit "
                    "mode cannot change (replace the meter instead).",
                    ", ".join(sold.mapped("serial_number")),
                )
            )
        occupied = changing.filtered(lambda m: m.sudo().tenant_id)
        if occupied:
            meter = occupied[0].sudo()
            raise UserError(
                self.env._(
                    "Meter %(meter)s: tenant %(tenant)s is on it; move the tenant out first, "
                    "then change its credit mode.",
                    meter=meter.serial_number,
                    tenant=meter.tenant_id.display_name,
                )
            )

    @api.constrains("credit_mode", "tariff_id", "tenant_id")
    def _check_credit_mode(self):
        """A time-of-use tariff is charged by the meter: money mode; money mode needs one."""
        for meter in self:
            tariff = meter._get_tariff()
            if not tariff:
                continue
            if tariff.pricing_mode == "tou" and meter.credit_mode != "money":
                raise ValidationError(
                    self.env._(
                        "Tariff %(tariff)s is time of use: meter %(meter)s must be in money "
                        "mode (it holds credit in kWh).",
                        tariff=tariff.name,
                        meter=meter.serial_number,
                    )
                )
            if tariff.pricing_mode != "tou" and meter.credit_mode == "money":
                raise ValidationError(
                    self.env._(
                        "Meter %(meter)s is in money mode: its tariff must be time of use "
                        "(%(tariff)s is priced per kWh).",
                        tariff=tariff.name,
                        meter=meter.serial_number,
                    )
                )

    @api.constrains("credit_mode", "tariff_id", "tenant_id", "profile_id")
    def _check_tou_special_days(self):
        """A tariff charging public holidays otherwise than as weekdays needs a meter whose
        profile holds special days (services/tou.special_days_error)."""
        for meter in self.filtered(lambda m: m.credit_mode == "money"):
            tariff = meter._get_tariff()
            if tariff and tou.charges_holidays(tariff):
                error = tou.special_days_error(meter, tariff)
                if error:
                    raise ValidationError(error)

    def _open_assignments(self):
        self.env["smartpm.meter.assignment"].sudo().create(
            [{"meter_id": m.id, "tenant_id": m.tenant_id.id} for m in self]
        )

    def _close_assignments(self):
        open_ones = (
            self.env["smartpm.meter.assignment"]
            .sudo()
            .search([("meter_id", "in", self.ids), ("date_end", "=", False)])
        )
        open_ones.write({"date_end": fields.Datetime.now()})
        # the partial unique index sees rows, not the ORM cache: flush before reopening
        open_ones.flush_recordset(["date_end"])

    @api.ondelete(at_uninstall=False)
    def _unlink_except_history(self):
        with_history = self.filtered("assignment_ids")
        if with_history:
            raise UserError(
                self.env._(
                    "Meter %(serials)s has a tenant history: archive or decommission it "
                    "instead of deleting it.",
                    serials=", ".join(with_history.mapped("serial_number")),
                )
            )

    def copy_data(self, default=None):
        default = dict(default or {})
        vals_list = super().copy_data(default)
        if "serial_number" not in default:
            for meter, vals in zip(self, vals_list, strict=True):
                vals["serial_number"] = f"{meter.serial_number}-COPY"
        return vals_list

    def _compute_job_count(self):
        counts = dict(
            self.env["smartpm.meter.job"]._read_group(
                [("meter_id", "in", self.ids)], ["meter_id"], ["__count"]
            )
        )
        for meter in self:
            meter.job_count = counts.get(meter, 0)

    # ---------------------------------------------------------------- jobs
    def _prepare_bridge_values(self, profiles=None):
        """How the bridge reaches this meter (docs/job-protocol.md); called under sudo.

        profiles: a dict shared by the jobs of one claim, so that each profile's values
        (its object map) are built once, not once per job (a tenth of Odoo's CPU in a
        claim of billing reads)."""
        self.ensure_one()
        return {
            "id": self.id,
            "serial_number": self.serial_number,
            "connection_type": self.connection_type,
            "host": self.host or None,
            "port": self.port or None,
            "framing": "hdlc" if self.connection_type == "serial" else self.framing,
            "device": self.device or None,
            "baudrate": self.baudrate,
            "client_address": self.client_address,
            "server_logical_address": self.server_logical_address,
            "server_physical_address": self.server_physical_address,
            "auth": self.auth,
            "password": self.auth_password or None,
            "auth_key": self.auth_key or None,
            "encryption_key": self.encryption_key or None,
            "system_title": self.system_title or None,
            # a decimal string: uint32 counters pass XML-RPC's 32-bit signed <int>
            "invocation_counter": str(self.invocation_counter or 0),
            "timeout_s": 10,
            "credit_mode": self.credit_mode,
            **meter_profile.bridge_values(self, profiles),
        }

    def _enqueue_job(self, job_type, payload=None, priority=None, **vals):
        """Create one job per meter; the bridges are woken at commit."""
        self.check_access("write" if job_type != "read" else "read")
        vals_list = []
        for meter in self:
            job_vals = {"meter_id": meter.id, "job_type": job_type, "payload": payload or {}}
            if priority is not None:
                job_vals["priority"] = priority
            vals_list.append({**job_vals, **vals})
        return engine.create(self.env["smartpm.meter.job"], vals_list)

    def _check_can_command(self):
        if self.filtered(lambda m: m.state == "decommissioned" or not m.active):
            raise UserError(self.env._("Decommissioned or archived meters take no commands."))

    def action_read_now(self):
        self._check_can_command()
        self._enqueue_job("read", {"objects": BILLING_OBJECTS}, priority=20)
        return self._notify_queued(self.env._("Reading queued"))

    def action_ping(self):
        self._check_can_command()
        self._enqueue_job("ping", {}, priority=30)
        return self._notify_queued(self.env._("Ping queued"))

    def action_disconnect(self):
        self._check_can_command()
        self._enqueue_job("disconnect", {}, priority=15)
        return self._notify_queued(self.env._("Disconnect queued"))

    def action_reconnect(self):
        self._check_can_command()
        self._enqueue_job("reconnect", {}, priority=15)
        return self._notify_queued(self.env._("Reconnect queued"))

    def action_sync_clock(self):
        """Set the meters' clocks to UTC now (a sync_clock job each); the bridge reports the
        drift it corrected, and a drift beyond the company's tolerance is an alarm."""
        self._check_can_command()
        self._enqueue_job("sync_clock", {}, priority=30)
        return self._notify_queued(
            self.env._("Clock synchronisation queued for %(n)s meter(s)", n=len(self))
        )

    def _notify_queued(self, title):
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": title,
                "message": self.env._("The meter bridge will run it in a few seconds."),
                "type": "info",
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def action_view_jobs(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Jobs"),
            "res_model": "smartpm.meter.job",
            "view_mode": "list,form",
            "domain": [("meter_id", "=", self.id)],
        }

    # ---------------------------------------------------------------- actions
    def action_activate(self):
        for meter in self:
            if meter.state == "decommissioned":
                raise UserError(self.env._("Meter %s is decommissioned.", meter.serial_number))
        self.filtered(lambda m: m.state == "draft").write({"state": "active"})

    def action_decommission(self):
        """End of life: the tenant is released and the meter archived; history stays."""
        self.write({"tenant_id": False, "state": "decommissioned", "active": False})

    def _replacement_chain(self):
        """This meter and the meters it replaced or that replaced it, oldest first."""
        self.ensure_one()
        meter = self.with_context(active_test=False).sudo()
        while meter.replaces_id and meter.replaces_id not in meter:
            meter = meter.replaces_id
        chain = meter
        while meter.replaced_by_id and meter.replaced_by_id not in chain:
            meter = meter.replaced_by_id
            chain |= meter
        return self.browse(chain.ids)

    def action_move_out(self):
        """Wizard: the tenant moves out (settle, clear, next tenant)."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Move the tenant out"),
            "res_model": "smartpm.move.out.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_meter_id": self.id},
        }

    def action_replace(self):
        """Wizard: a broken meter replaced by a new one (credit and tenant move)."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Replace the meter"),
            "res_model": "smartpm.meter.replacement.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_old_meter_id": self.id},
        }

    def action_view_move_outs(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Move-outs"),
            "res_model": "smartpm.move.out",
            "view_mode": "list,form",
            "domain": ["|", ("meter_id", "=", self.id), ("transfer_meter_id", "=", self.id)],
        }

    def action_view_assignments(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Tenant history"),
            "res_model": "smartpm.meter.assignment",
            "view_mode": "list,form",
            # a replaced meter's history goes on on the meter that replaced it
            "domain": [("meter_id", "in", self._replacement_chain().ids)],
            "context": {"active_test": False},
        }

    # ---------------------------------------------------------------- keys (issue 14)
    @api.model
    def _generate_key(self):
        """A random 16-byte key in upper-case hex (association keys, token key)."""
        return secrets.token_hex(16).upper()

    @api.constrains("token_key")
    def _check_token_key(self):
        for meter in self.sudo():
            if meter.token_key and not HEX_KEY_RE.match(meter.token_key.upper()):
                raise ValidationError(
                    self.env._(
                        "Meter %(serial)s: the token key is 32 hexadecimal digits.",
                        serial=meter.serial_number,
                    )
                )

    def _get_token_key(self):
        """The meter's token key as bytes, or None (read in sudo: Manager-only field)."""
        self.ensure_one()
        key = self.sudo().token_key
        return bytes.fromhex(key) if key and HEX_KEY_RE.match(key.upper()) else None

    @api.depends("tariff_id", "tenant_id.smartpm_tariff_id")
    def _compute_effective_tariff(self):
        for meter in self:
            meter.effective_tariff_id = meter._get_tariff()

    @api.depends(
        "threshold_override",
        "low_credit_kwh",
        "trip_kwh",
        "tariff_id.low_credit_kwh",
        "tariff_id.trip_kwh",
        "tenant_id.smartpm_tariff_id",
        "credit_mode",
        "low_credit_money",
        "trip_money",
        "tariff_id.low_credit_money",
        "tariff_id.trip_money",
    )
    def _compute_effective_thresholds(self):
        for meter in self:
            low, trip = meter._get_thresholds()
            meter.effective_low_credit_kwh = low
            meter.effective_trip_kwh = trip

    def _compute_purchase_count(self):
        counts = dict(
            self.env["smartpm.credit.purchase"]._read_group(
                [("meter_id", "in", self.ids)], ["meter_id"], ["__count"]
            )
        )
        for meter in self:
            meter.purchase_count = counts.get(meter, 0)

    def _get_tariff(self):
        """The meter's own tariff, else its tenant's default tariff."""
        self.ensure_one()
        return self.tariff_id or self.tenant_id.sudo().smartpm_tariff_id

    def _get_thresholds(self):
        """(low-credit alarm, trip) in the unit of the meter's credit: kWh, or currency on a
        money-mode meter (``*_money``); the tariff's unless the meter has its own."""
        self.ensure_one()
        tariff = self._get_tariff()
        unit = "money" if self.credit_mode == "money" else "kwh"
        source = tariff if tariff and not self.threshold_override else self
        return source[f"low_credit_{unit}"], source[f"trip_{unit}"]

    # ---------------------------------------------------------------- sale helpers
    def _smartpm_contact_warning(self, now=None):
        """Why the credit may not reach the meter soon (never seen, silent for a day), or
        False. A warning, not a refusal: the credit waits in the queue for the meter."""
        self.ensure_one()
        meter = self.sudo()
        if not meter.last_seen:
            return self.env._(
                "Meter %s has never answered: the credit will reach it only once it "
                "is connected. Tell the customer.",
                meter.serial_number,
            )
        now = now or fields.Datetime.now()
        if now - meter.last_seen > CONTACT_WARNING_AFTER:
            return self.env._(
                "Meter %(meter)s has not answered since %(date)s: the credit will reach "
                "it when it is back in contact. Tell the customer.",
                meter=meter.serial_number,
                date=fields.Datetime.context_timestamp(self, meter.last_seen).strftime(
                    "%Y-%m-%d %H:%M"
                ),
            )
        return False

    def _smartpm_amount_limits(self, currency=None):
        """(minimum, maximum, text) of one sale for this meter, the text in the currency
        ("between $ 1.00 and $ 10,000.00"); 0 maximum = no maximum."""
        self.ensure_one()
        meter = self.sudo()
        tariff = meter._get_tariff()
        if not tariff:
            return 0.0, 0.0, ""
        currency = currency or tariff.currency_id
        minimum, maximum = tariff._get_amount_limits(meter.company_id)
        if maximum:
            text = self.env._(
                "between %(min)s and %(max)s",
                min=format_money(self.env, minimum, currency),
                max=format_money(self.env, maximum, currency),
            )
        else:
            text = self.env._("at least %s", format_money(self.env, minimum, currency))
        return minimum, maximum, text

    def _smartpm_amount_error(self, amount, currency=None):
        """Why ``amount`` is not a sale this meter can take (number, sign, limits), with
        the amounts in the currency, or False. The vending service checks again."""
        self.ensure_one()
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            return self.env._("The amount must be a number.")
        if not math.isfinite(amount):
            return self.env._("The amount must be a number.")
        minimum, maximum, limits = self._smartpm_amount_limits(currency)
        if amount < 0:
            return self.env._(
                "The amount cannot be negative: credit sold cannot be taken back here. "
                "Enter what the customer pays, %s.",
                limits,
            )
        if amount == 0:
            return self.env._("Enter the amount the customer pays, %s.", limits)
        tariff = self.sudo()._get_tariff()
        if tariff:
            cur = currency or tariff.currency_id
            if cur.compare_amounts(amount, minimum) < 0 or (
                maximum and cur.compare_amounts(amount, maximum) > 0
            ):
                return self.env._(
                    "%(amount)s is not possible for meter %(meter)s: the amount must be "
                    "%(limits)s.",
                    amount=format_money(self.env, amount, cur),
                    meter=self.serial_number,
                    limits=limits,
                )
        return False

    def _smartpm_last_purchase(self):
        """The meter's last purchase (not reversed) as a sales screen shows it, or False."""
        self.ensure_one()
        purchase = (
            self.env["smartpm.credit.purchase"]
            .sudo()
            .search(
                [("meter_id", "=", self.id), ("state", "!=", "reversed")],
                order="date desc, id desc",
                limit=1,
            )
        )
        if not purchase:
            return False
        return {
            "reference": purchase.name,
            "date": fields.Datetime.to_string(purchase.date),
            "amount": purchase.amount,
            "amount_text": format_money(self.env, purchase.amount, purchase.currency_id),
            "kwh": purchase.kwh,
            "channel": dict(purchase._fields["channel"]._description_selection(self.env)).get(
                purchase.channel, purchase.channel
            ),
        }

    def _smartpm_estimated_balance_kwh(self, extra_kwh=0.0):
        """Credit the meter should hold once what is sold reaches it: its last known
        credit, the kWh of purchases not yet delivered, and ``extra_kwh``."""
        self.ensure_one()
        meter = self.sudo()
        return float_round(meter.credit_kwh + meter._smartpm_undelivered_kwh() + extra_kwh, 3)

    def _smartpm_undelivered_kwh(self):
        """kWh sold for the meter and not yet on it (its last known credit lacks them)."""
        self.ensure_one()
        pending = (
            self.env["smartpm.credit.purchase"]
            .sudo()
            .search([("meter_id", "=", self.id), ("state", "in", UNDELIVERED_STATES)])
        )
        return float_round(sum(pending.mapped("kwh")), 3)

    def _prepare_sale_info(self):
        """What a sales channel shows about the meter before selling (called under sudo)."""
        self.ensure_one()
        info = sale_info.sale_info(self)
        tariff = info["tariff"]
        return {
            "meter_id": self.id,
            "meter": self.serial_number,
            "tenant": self.tenant_id.name,
            "tenant_number": self.tenant_id.tenant_number or "",
            "tariff": tariff.name if tariff else False,
            "currency": tariff.currency_id.name if tariff else False,
            "price_per_kwh": tariff.price_per_kwh if tariff else 0.0,
            "min_amount": info["min_amount"] if tariff else 0.0,
            "max_amount": info["max_amount"] if tariff else 0.0,
            "credit_kwh": self.credit_kwh,
            "relay_state": self.relay_state,
            "sellable": info["sellable"],
            "warning": info["warning"],
        }

    # ---------------------------------------------------------------- push to the meter
    def _commandable(self):
        return self.filtered(lambda m: m.active and m.state in ("active", "disconnected"))

    def _supersede(self, job_type):
        """Cancel pending jobs of ``job_type``: only the newest setting matters."""
        pending = (
            self.env["smartpm.meter.job"]
            .sudo()
            .search(
                [
                    ("meter_id", "in", self.ids),
                    ("job_type", "=", job_type),
                    ("state", "=", "pending"),
                ]
            )
        )
        if pending:
            from ..services import job_queue

            job_queue.cancel(self.env, pending.ids)

    def _push_thresholds(self):
        meters = self._commandable()
        meters._supersede("set_thresholds")
        vals_list = []
        for meter in meters:
            low, trip = meter._get_thresholds()
            unit = "money" if meter.credit_mode == "money" else "kwh"
            vals_list.append(
                {
                    "meter_id": meter.id,
                    "job_type": "set_thresholds",
                    "payload": {f"low_credit_{unit}": low, f"trip_{unit}": trip},
                    "priority": THRESHOLD_PRIORITY,
                }
            )
        # one batch: a tariff change may concern many meters
        return engine.create(self.env["smartpm.meter.job"], vals_list)

    def _push_load_limit(self):
        meters = self._commandable()
        meters._supersede("set_load_limit")
        return engine.create(
            self.env["smartpm.meter.job"],
            [
                {
                    "meter_id": meter.id,
                    "job_type": "set_load_limit",
                    "payload": {"load_limit_w": meter.load_limit_w},
                    "priority": THRESHOLD_PRIORITY,
                }
                for meter in meters
            ],
        )

    def action_push_settings(self):
        """Button: send thresholds, load limit, load-trip recovery and emergency credit to
        the meter again."""
        self._check_can_command()
        self.check_access("write")
        self._push_thresholds()
        self._push_load_limit()
        self._push_load_recovery()
        emergency.push(self)
        standing_charge.push(self)
        calendars.push(self.env, self, force=True)
        return self._notify_queued(self.env._("Settings queued"))

    def action_view_purchases(self):
        self.ensure_one()
        return self.env["smartpm.credit.purchase"]._get_list_action([("meter_id", "=", self.id)])

    def action_sell_credit(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Sell credit"),
            "res_model": "smartpm.sell.credit.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_meter_id": self.id},
        }

    # ---------------------------------------------------------------- always online
    def _register_answer(self):
        """The meter answered: forget missed pings and clear communication-lost alarms."""
        if not self:
            return
        self.env.flush_all()
        self.env.cr.execute(
            """
            UPDATE smartpm_meter SET missed_ping_count = 0
             WHERE id = ANY(%s) AND missed_ping_count > 0
            RETURNING id
            """,
            (self.ids,),
        )
        recovered = [row[0] for row in self.env.cr.fetchall()]
        if not recovered:
            return
        self.browse(recovered).invalidate_recordset(["missed_ping_count"])
        alarms = (
            self.env["smartpm.alarm"]
            .sudo()
            .search(
                [
                    ("meter_id", "in", recovered),
                    ("alarm_type", "=", "comm_lost"),
                    ("state", "in", ("new", "acknowledged")),
                ]
            )
        )
        alarms._clear(self.env._("The meter answers again."))

    @api.model
    def _offline_after_minutes(self, company):
        """How long a meter may stay silent before it counts as offline: the company's
        pings in a row at its ping interval (the limit of the comm-lost alarm)."""
        return (company.smartpm_ping_interval_min or 60) * (company.smartpm_comm_lost_pings or 3)

    @api.model
    def _mark_never_seen_offline(self, now=None):
        """Meters in service that never answered, activated longer than the offline threshold
        ago, are offline, not "unknown" (also when no ping could even be tried)."""
        now = now or fields.Datetime.now()
        self.env.flush_all()
        marked = []
        for company in self.env["res.company"]._smartpm_with_meters():
            since = now - timedelta(minutes=self._offline_after_minutes(company))
            self.env.cr.execute(
                """
                UPDATE smartpm_meter SET online_state = 'offline'
                 WHERE company_id = %s AND active AND state IN ('active', 'disconnected')
                   AND last_seen IS NULL AND online_state IS DISTINCT FROM 'offline'
                   AND COALESCE(date_activated, create_date) < %s
                RETURNING id
                """,
                (company.id, since),
            )
            marked += [row[0] for row in self.env.cr.fetchall()]
        meters = self.browse(marked)
        meters.invalidate_recordset(["online_state"])
        return meters

    def _register_missed_ping(self):
        """Count a missed ping; at the company's limit the meter is offline and alarmed.
        A meter that never answered is offline at its first missed ping."""
        if not self:
            return
        self.env.flush_all()
        self.env.cr.execute(
            """
            UPDATE smartpm_meter SET missed_ping_count = COALESCE(missed_ping_count, 0) + 1
             WHERE id = ANY(%s)
            RETURNING id, missed_ping_count
            """,
            (self.ids,),
        )
        counts = dict(self.env.cr.fetchall())
        self.invalidate_recordset(["missed_ping_count"])
        lost = self.browse(
            [
                m.id
                for m in self.sudo()
                if counts.get(m.id, 0) >= (m.company_id.smartpm_comm_lost_pings or 3)
            ]
        ).sudo()
        never_seen = self.sudo().filtered(lambda m: not m.last_seen)
        (lost | never_seen).filtered(lambda m: m.online_state != "offline").write(
            {"online_state": "offline"}
        )
        if not lost:
            return
        already = set(
            self.env["smartpm.alarm"]
            .sudo()
            .search(
                [
                    ("meter_id", "in", lost.ids),
                    ("alarm_type", "=", "comm_lost"),
                    ("state", "in", ("new", "acknowledged")),
                ]
            )
            .meter_id.ids
        )
        now = fields.Datetime.now()
        self.env["smartpm.alarm"].sudo().create(
            [
                {
                    "meter_id": meter.id,
                    "alarm_type": "comm_lost",
                    "meter_time": now,
                    # env._: a comprehension's frame has no `self` for _() to find a language
                    "description": self.env._(
                        "No answer to %(n)s pings in a row; last seen %(seen)s.",
                        n=counts[meter.id],
                        seen=meter.last_seen or self.env._("never"),
                    ),
                }
                for meter in lost
                if meter.id not in already
            ]
        )

    # ---------------------------------------------------------------- DLMS push
    @api.constrains(
        "push_enabled",
        "push_destination",
        "push_heartbeat_s",
        "push_retries",
        "push_repetition_delay_s",
        "push_randomisation_s",
        "push_windows",
        "auth",
        "system_title",
    )
    def _check_push(self):
        for meter in self:
            try:
                parse_windows(meter.push_windows)
            except ValueError as exc:
                raise ValidationError(
                    self.env._(
                        "Meter %(serial)s: communication windows: %(error)s.",
                        serial=meter.serial_number,
                        error=exc,
                    )
                ) from exc
            for name, top in (
                ("push_heartbeat_s", 7 * 86400),
                ("push_retries", 255),
                ("push_repetition_delay_s", 65535),
                ("push_randomisation_s", 65535),
            ):
                if not 0 <= meter[name] <= top:
                    raise ValidationError(
                        self.env._(
                            "Meter %(serial)s: %(field)s must be from 0 to %(top)s.",
                            serial=meter.serial_number,
                            field=meter._fields[name].string,
                            top=top,
                        )
                    )
            if not meter.push_enabled:
                continue
            if meter.auth != "hls_gmac":
                raise ValidationError(
                    self.env._(
                        "Meter %s: push mode needs HLS-GMAC (pushes are ciphered with the "
                        "meter's keys).",
                        meter.serial_number,
                    )
                )
            dest = (meter.push_destination or "").strip()
            port = dest.rpartition(":")[2]
            if not PUSH_DESTINATION_RE.match(dest) or not 0 < int(port) < 65536:
                raise ValidationError(
                    self.env._(
                        "Meter %s: the push destination must be host:port, e.g. "
                        "head-end.example.com:4059.",
                        meter.serial_number,
                    )
                )
            title = meter.sudo().system_title or ""
            if not re.fullmatch(r"[0-9A-Fa-f]{16}", title):
                raise ValidationError(
                    self.env._(
                        "Meter %s: push mode needs the meter's system title (8 bytes in hex): "
                        "pushes are recognised by it.",
                        meter.serial_number,
                    )
                )
            self.env.cr.execute(
                """
                SELECT serial_number FROM smartpm_meter
                 WHERE push_enabled AND active AND id != %s AND upper(system_title) = %s
                 LIMIT 1
                """,
                (meter.id, title.upper()),
            )
            twin = self.env.cr.fetchone()
            if twin:
                raise ValidationError(
                    self.env._(
                        "Meter %(serial)s: meter %(other)s in push mode has the same system "
                        "title; pushes could not tell them apart.",
                        serial=meter.serial_number,
                        other=twin[0],
                    )
                )

    def _smartpm_push_settings(self):
        """The set_push payload of the meter's push fields (an empty destination: off)."""
        self.ensure_one()
        return {
            "destination": (self.push_destination or "").strip() if self.push_enabled else "",
            "heartbeat_s": self.push_heartbeat_s if self.push_enabled else 0,
            "retries": self.push_retries,
            "repetition_delay_s": self.push_repetition_delay_s,
            "randomisation_s": self.push_randomisation_s,
            "windows": parse_windows(self.push_windows),
        }

    def _smartpm_push_before(self, vals):
        push_fields = {
            "push_enabled",
            "push_destination",
            "push_heartbeat_s",
            "push_retries",
            "push_repetition_delay_s",
            "push_randomisation_s",
            "push_windows",
        }
        if not push_fields & set(vals):
            return {}
        return {m.id: (m.push_enabled, m._smartpm_push_settings()) for m in self}

    def _smartpm_push_setup_changed(self, before):
        """write(): a set_push job for each meter whose push settings changed (once per
        change, a pending one superseded); push turned on starts the heartbeat clock."""
        if not before:
            return
        changed = self.filtered(lambda m: m._smartpm_push_settings() != before[m.id][1])
        turned_on = changed.filtered(lambda m: m.push_enabled and not before[m.id][0])
        if turned_on:
            turned_on.sudo().write({"push_enabled_at": fields.Datetime.now()})
        changed._push_push_setup()

    def _push_push_setup(self):
        meters = self._commandable()
        meters._supersede("set_push")
        return engine.create(
            self.env["smartpm.meter.job"],
            [
                {
                    "meter_id": meter.id,
                    "job_type": "set_push",
                    "payload": meter._smartpm_push_settings(),
                    "priority": THRESHOLD_PRIORITY,
                }
                for meter in meters
            ],
        )

    def _smartpm_clear_comm_lost(self, reason):
        if not self:
            return
        alarms = (
            self.env["smartpm.alarm"]
            .sudo()
            .search(
                [
                    ("meter_id", "in", self.ids),
                    ("alarm_type", "=", "comm_lost"),
                    ("state", "in", ("new", "acknowledged")),
                ]
            )
        )
        alarms._clear(reason)

    @api.model
    def _cron_check_heartbeats(self, now=None):
        """Meters in push mode silent past their heartbeat plus the push margin are offline
        and get one comm-lost alarm (their next push clears it, services/push.py)."""
        now = now or fields.Datetime.now()
        margin = int(
            self.env["ir.config_parameter"].sudo().get_param(PUSH_MARGIN_PARAM)
            or PUSH_MARGIN_DEFAULT_S
        )
        self.env.flush_all()
        self.env.cr.execute(
            """
            SELECT m.id, COALESCE(m.push_last_at, m.push_enabled_at, m.create_date)
              FROM smartpm_meter m
             WHERE m.push_enabled AND m.active AND m.push_heartbeat_s > 0
               AND m.state IN ('active', 'disconnected')
               AND COALESCE(m.push_last_at, m.push_enabled_at, m.create_date)
                   < %s - make_interval(secs => m.push_heartbeat_s + %s)
               AND NOT EXISTS (SELECT 1 FROM smartpm_alarm a
                                WHERE a.meter_id = m.id AND a.alarm_type = 'comm_lost'
                                  AND a.state IN ('new', 'acknowledged'))
            """,
            (now, margin),
        )
        rows = self.env.cr.fetchall()
        since = dict(rows)
        # a meter with communication windows may be silent for its longest closed gap more
        lost = self.sudo().browse([row[0] for row in rows])
        lost = lost.filtered(
            lambda m: (
                not m.push_windows
                or since[m.id]
                < now
                - timedelta(seconds=m.push_heartbeat_s + margin)
                - longest_closed(parse_windows(m.push_windows))
            )
        )
        lost.filtered(lambda m: m.online_state != "offline").write({"online_state": "offline"})
        self.env["smartpm.alarm"].sudo().create(
            [
                {
                    "meter_id": meter.id,
                    "alarm_type": "comm_lost",
                    "meter_time": now,
                    "description": self.env._(
                        "No push for more than its heartbeat of %(hb)s s plus %(margin)s s; "
                        "last push %(seen)s.",
                        hb=meter.push_heartbeat_s,
                        margin=margin,
                        seen=meter.push_last_at or self.env._("never"),
                    ),
                }
                for meter in lost
            ]
        )
        return lost

    # ---------------------------------------------------------------- scheduled jobs
    @api.model
    def _queue_backlog(self, kind):
        self.env.cr.execute(
            """
            SELECT count(*) FROM smartpm_meter_job
             WHERE state IN ('pending', 'claimed') AND payload->>'schedule' = %s
            """,
            (kind,),
        )
        return self.env.cr.fetchone()[0]

    @api.model
    def _scheduled_candidates(self, key_prefix, limit, extra_where="", params=()):
        """Active meters without a job keyed ``key_prefix || meter id`` yet (one per period)."""
        self.env.flush_all()
        self.env.cr.execute(
            f"""
            SELECT m.id FROM smartpm_meter m
             WHERE m.active AND m.state IN ('active', 'disconnected')
               AND NOT EXISTS (SELECT 1 FROM smartpm_meter_job j
                                WHERE j.idempotency_key = %s || m.id::text)
               {extra_where}
             ORDER BY m.id
             LIMIT %s
            """,  # noqa: S608 - extra_where is a constant of this module
            (key_prefix, *params, limit),
        )
        return [row[0] for row in self.env.cr.fetchall()]

    @api.model
    def _queue_scheduled(
        self, kind, key_prefix, vals_for, batch_size, max_backlog, extra_where="", params=()
    ):
        """Queue one job per candidate meter, in one create(), never past ``max_backlog``."""
        room = min(batch_size, max_backlog - self._queue_backlog(kind))
        if room <= 0:
            return self.env["smartpm.meter.job"]
        meter_ids = self._scheduled_candidates(key_prefix, room, extra_where, params)
        if not meter_ids:
            return self.env["smartpm.meter.job"]
        vals_list = vals_for(meter_ids)
        for meter_id, vals in zip(meter_ids, vals_list, strict=True):
            vals.update(
                meter_id=meter_id,
                idempotency_key=f"{key_prefix}{meter_id}",
                priority=SCHEDULE_PRIORITY[kind],
            )
            vals["payload"] = dict(vals.get("payload") or {}, schedule=kind)
        return engine.as_engine(self.env["smartpm.meter.job"])._create_scheduled(vals_list)

    @api.model
    def _cron_queue_billing_reads(self, batch_size=DEFAULT_BATCH, max_backlog=DEFAULT_MAX_BACKLOG):
        """Daily billing read of every active meter; runs often, queues a batch each time."""
        key = f"billing:{fields.Date.context_today(self)}:"
        return self._queue_scheduled(
            "billing",
            key,
            lambda ids: [
                {"job_type": "read", "payload": {"objects": BILLING_OBJECTS}} for _i in ids
            ],
            batch_size,
            max_backlog,
        )

    @api.model
    def _cron_queue_profile_reads(self, batch_size=DEFAULT_BATCH, max_backlog=DEFAULT_MAX_BACKLOG):
        """Daily load-profile collection from the last stored capture on."""
        now = fields.Datetime.now().replace(microsecond=0)
        key = f"profile:{fields.Date.context_today(self)}:"

        def vals_for(meter_ids):
            self.env.cr.execute(
                """
                SELECT meter_id, max(reading_time) FROM smartpm_reading
                 WHERE meter_id = ANY(%s) AND obis = %s AND source = 'profile'
                 GROUP BY meter_id
                """,
                (meter_ids, ENERGY_IMPORT),
            )
            last = dict(self.env.cr.fetchall())
            oldest = now - timedelta(days=PROFILE_MAX_DAYS)
            out = []
            for meter_id in meter_ids:
                start = max(last.get(meter_id) or now - timedelta(days=1), oldest)
                out.append(
                    {
                        "job_type": "read",
                        "max_attempts": 3,
                        "payload": {
                            "objects": [PROFILE_OBJECT],
                            "from": start.isoformat() + "Z",
                            "to": now.isoformat() + "Z",
                        },
                    }
                )
            return out

        return self._queue_scheduled("profile", key, vals_for, batch_size, max_backlog)

    @api.model
    def _cron_queue_event_reads(
        self, interval_hours=None, batch_size=DEFAULT_BATCH, max_backlog=DEFAULT_MAX_BACKLOG
    ):
        """Collect the meters' event logs every company's interval (``interval_hours``
        overrides it): tampering events become alarms. Each read starts where the meter's
        last successful one did (a meter back from an outage sends what it logged
        meanwhile); alarms are deduplicated anyway."""
        now = fields.Datetime.now()
        jobs = self.env["smartpm.meter.job"]
        for company in self.env["res.company"]._smartpm_with_meters():
            minutes = interval_hours * 60 if interval_hours else company.smartpm_event_interval_min
            jobs |= self._queue_event_reads(
                company, max(int(minutes or 240), 1), now, batch_size, max_backlog
            )
            # meters in push mode sent their events already: a daily reconciliation only
            jobs |= self._queue_event_reads(
                company, PUSH_RECONCILE_MIN, now, batch_size, max_backlog, push=True
            )
        return jobs

    def _queue_event_reads(self, company, minutes, now, batch_size, max_backlog, push=False):
        slot = int(now.timestamp() // (minutes * 60))

        def vals_for(meter_ids):
            self.env.cr.execute(
                """
                SELECT meter_id, max(date_claimed) FROM smartpm_meter_job
                 WHERE meter_id = ANY(%s) AND job_type = 'read_events' AND state = 'done'
                 GROUP BY meter_id
                """,
                (meter_ids,),
            )
            last = dict(self.env.cr.fetchall())
            out = []
            for meter_id in meter_ids:
                since = last.get(meter_id)
                # a margin for the meter's clock drift
                since = (since - timedelta(minutes=10)).isoformat() + "Z" if since else None
                out.append(
                    {"job_type": "read_events", "max_attempts": 3, "payload": {"since": since}}
                )
            return out

        return self._queue_scheduled(
            "events",
            f"events:{'push:' if push else ''}{minutes}:{slot}:",
            vals_for,
            batch_size,
            max_backlog,
            extra_where=" AND m.company_id = %s AND COALESCE(m.push_enabled, FALSE) = %s",
            params=(company.id, push),
        )

    @api.model
    def _cron_queue_pings(self, batch_size=DEFAULT_BATCH, max_backlog=DEFAULT_MAX_BACKLOG):
        """Ping meters not heard from for the company's interval (one attempt: a miss is a
        miss); the slot in the key keeps one ping per meter per interval."""
        jobs = self.env["smartpm.meter.job"]
        now = fields.Datetime.now()
        self._mark_never_seen_offline(now)
        for company in self.env["res.company"]._smartpm_with_meters():
            interval = company.smartpm_ping_interval_min or 60
            slot = int(now.timestamp() // (interval * 60))
            jobs |= self._queue_scheduled(
                "ping",
                f"ping:{slot}:",
                lambda ids: [{"job_type": "ping", "payload": {}, "max_attempts": 1} for _i in ids],
                batch_size,
                max_backlog,
                extra_where="""
                   AND m.company_id = %s
                   AND NOT COALESCE(m.push_enabled, FALSE)
                   AND (m.last_seen IS NULL OR m.last_seen < %s)
                   AND NOT EXISTS (SELECT 1 FROM smartpm_meter_job p
                                    WHERE p.meter_id = m.id AND p.job_type = 'ping'
                                      AND p.state IN ('pending', 'claimed'))
                """,
                params=(company.id, now - timedelta(minutes=interval)),
            )
        return jobs

    @api.model
    def _cron_queue_clock_syncs(self, batch_size=DEFAULT_BATCH, max_backlog=DEFAULT_MAX_BACKLOG):
        """Synchronise every active meter's clock every company's interval (days; 0: never),
        one job per meter and interval."""
        jobs = self.env["smartpm.meter.job"]
        today = fields.Date.context_today(self)
        for company in self.env["res.company"]._smartpm_with_meters():
            days = company.smartpm_clock_sync_days
            if not days or days <= 0:
                continue
            slot = today.toordinal() // days
            jobs |= self._queue_scheduled(
                "clock",
                f"clock:{days}:{slot}:",
                lambda ids: [
                    {"job_type": "sync_clock", "payload": {}, "max_attempts": 3} for _i in ids
                ],
                batch_size,
                max_backlog,
                extra_where=" AND m.company_id = %s",
                params=(company.id,),
            )
        return jobs

    def _smartpm_check_clock_drift(self, job, result):
        """A sync_clock result: a drift beyond the company's tolerance is a clock_drift
        alarm (the clock is right again now; a clock that keeps drifting has a failing
        crystal or battery, or someone sets it to move consumption into cheaper hours)."""
        self.ensure_one()
        drift = result.get("clock_drift_s")
        if not isinstance(drift, (int, float)) or isinstance(drift, bool):
            return 0
        limit = self.company_id.smartpm_clock_drift_max_s
        if not limit or abs(drift) <= limit:
            return 0
        from ..services.ingest import parse_time  # noqa: PLC0415 - ingest imports models

        found = parse_time(self.env, result.get("meter_time")) if result.get("meter_time") else None
        when = (found or job.date_claimed or fields.Datetime.now()).replace(microsecond=0)
        before = result.get("meter_time_before") or "?"
        description = self.env._(
            "The meter's clock was %(drift)s s %(way)s of UTC (it read %(before)s); the "
            "company's tolerance is %(limit)s s. The clock synchronisation corrected it. A "
            "clock that drifts again points at a failing clock (crystal, battery) or at "
            "someone setting it, e.g. to move consumption into cheaper hours.",
            drift=round(abs(drift), 1),
            way=self.env._("ahead") if drift > 0 else self.env._("behind"),
            before=before,
            limit=limit,
        )
        return (
            self.env["smartpm.alarm"]
            .sudo()
            ._create_from_events(
                [
                    {
                        "meter_id": self.id,
                        "alarm_type": "clock_drift",
                        "meter_time": when,
                        "clock_drift_s": float(drift),
                        "description": description,
                    }
                ]
            )
        )

    # ---------------------------------------------------------------- statistics buttons
    def action_view_load_curve(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("smartpm_prepay.action_load_curve")
        action["domain"] = [("meter_id", "=", self.id)]
        action["name"] = self.env._("Load curve of %s", self.serial_number)
        return action

    def action_view_consumption(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "smartpm_prepay.action_consumption_daily"
        )
        # a replaced meter's consumption goes on on the meter that replaced it
        action["domain"] = [("meter_id", "in", self._replacement_chain().ids)]
        action["context"] = {"search_default_group_day": 1}
        return action

    # ------------------------------------------------------------ POS data
    @api.model
    def _load_pos_data_domain(self, data):
        # Only the meters of the orders loaded with the session: the others are searched
        # on demand (a database holds 100,000 meters).
        ids = {
            line["smartpm_meter_id"]
            for line in data.get("pos.order.line", {}).get("data", [])
            if line.get("smartpm_meter_id")
        }
        return [("id", "in", list(ids))]

    @api.model
    def _load_pos_data_fields(self, config_id):
        return [
            "id",
            "serial_number",
            "state",
            "tenant_name",
            "tenant_number",
            "credit_kwh",
            "write_date",
        ]

    # ------------------------------------------------------------ rules of sale
    # The vending service decides; these only turn its refusals into a reason to show.
    def _smartpm_sale_refusal(self):
        """Why credit cannot be sold to this meter, or False."""
        self.ensure_one()
        return sale_info.sale_info(self)["reason"]

    def _smartpm_amount_refusal(self, amount, currency):
        """Why ``amount`` in ``currency`` cannot be sold to this (sellable) meter, or False;
        amounts in the message are written in the currency."""
        self.ensure_one()
        error = sale_info.amount_refusal(self.sudo(), amount, currency)
        return error.args[0] if error else False

    def _smartpm_company_refusal(self, company):
        """The register books the sale: it must belong to the meter's company."""
        self.ensure_one()
        return sale_info.company_refusal(self.sudo(), company)

    def _smartpm_pos_values(self, info=None):
        """What the credit popup shows of a meter: tenant, state, the warnings and the last
        purchase, the limits of a sale in the currency (``info``: its sale_info)."""
        self.ensure_one()
        meter = self.sudo()
        info = info or sale_info.sale_info(meter)
        states = dict(self._fields["state"]._description_selection(self.env))
        return {
            "id": self.id,
            "serial_number": self.serial_number,
            "tenant_id": meter.tenant_id.id or False,
            "tenant_name": meter.tenant_id.name or "",
            "tenant_number": meter.tenant_id.tenant_number or "",
            "tenant_phone": meter.tenant_id.mobile or meter.tenant_id.phone or "",
            "state": self.state,
            "state_label": states.get(self.state, self.state),
            "credit_kwh": meter.credit_kwh,
            "last_seen": fields.Datetime.to_string(meter.last_seen) if meter.last_seen else False,
            "refusal": info["reason"] if not info["sellable"] else False,
            "warning": info["warning"],
            "last_purchase": meter._smartpm_last_purchase(),
            "min_amount": info["min_amount"] if info["tariff"] else 0.0,
            "max_amount": info["max_amount"] if info["tariff"] else 0.0,
            "limits": info["limits"],
        }

    @api.model
    def _smartpm_phone_partner_ids(self, query):
        """Tenants whose phone or mobile holds the digits of ``query`` (or [])."""
        digits = re.sub(r"\D", "", query)
        if not PHONE_QUERY.match(query) or len(digits) < PHONE_MIN_DIGITS:
            return []
        self.env["res.partner"].flush_model(["phone", "mobile", "is_tenant"])
        self.env.cr.execute(
            r"""
            SELECT id FROM res_partner
             WHERE is_tenant
               AND (regexp_replace(COALESCE(phone, ''), '\D', '', 'g') LIKE %(pattern)s
                 OR regexp_replace(COALESCE(mobile, ''), '\D', '', 'g') LIKE %(pattern)s)
             LIMIT 1000
            """,
            {"pattern": f"%{digits}%"},
        )
        return [row[0] for row in self.env.cr.fetchall()]

    @api.model
    def _smartpm_search_domain(self, query):
        domain = [
            "|",
            "|",
            ("serial_number", "ilike", query),
            ("tenant_id.name", "ilike", query),
            ("tenant_id.tenant_number", "ilike", query),
        ]
        partner_ids = self._smartpm_phone_partner_ids(query)
        if partner_ids:
            domain = expression.OR([domain, [("tenant_id", "in", partner_ids)]])
        return domain

    # ------------------------------------------------------------ RPC from the POS
    @api.model
    def pos_search_meters(self, query, limit=SEARCH_LIMIT):
        """Meters whose number, tenant name, tenant number or tenant phone matches
        ``query``: ``{"meters": [...], "more": True if more match than ``limit``}``."""
        query = query.strip() if isinstance(query, str) else ""
        try:
            limit = max(1, min(int(limit or SEARCH_LIMIT), SEARCH_LIMIT_MAX))
        except (TypeError, ValueError, OverflowError):
            limit = SEARCH_LIMIT
        if len(query) < 2:
            return {"meters": [], "more": False, "limit": limit}
        meters = self.search(
            self._smartpm_search_domain(query), limit=limit + 1, order="serial_number"
        )
        return {
            "meters": [meter._smartpm_pos_values() for meter in meters[:limit]],
            "more": len(meters) > limit,
            "limit": limit,
        }

    @api.model
    def _smartpm_parse_amount(self, amount):
        """A finite float, or raise ValueError (booleans, text, NaN and infinities)."""
        if isinstance(amount, bool) or amount is None:
            raise ValueError(amount)
        value = float(amount)
        if not math.isfinite(value):
            raise ValueError(amount)
        return value

    @api.model
    def pos_quote_credit(self, meter_id, amount, config_id):
        """Preview of a sale: the meter, the kWh, the price, the estimated new balance, or
        why it cannot be sold. Nothing is recorded."""
        try:
            meter = self.browse(int(meter_id)).exists()
        except (TypeError, ValueError, OverflowError):
            meter = self.browse()
        if not meter:
            return {"refusal": self.env._("This meter does not exist any more.")}
        meter.check_access("read")
        values = meter._smartpm_pos_values()
        values.update(
            kwh=0.0,
            price_per_kwh=0.0,
            price_info="",
            tax_ids=[],
            estimated_balance_kwh=meter.sudo()._smartpm_estimated_balance_kwh(),
            undelivered_kwh=meter.sudo()._smartpm_undelivered_kwh(),
        )
        if values["refusal"]:
            return values
        try:
            amount = self._smartpm_parse_amount(amount)
        except (TypeError, ValueError, OverflowError):
            values["refusal"] = self.env._("The amount must be a number.")
            return values
        config = self.env["pos.config"].browse(int(config_id)).exists()
        if not config:
            values["refusal"] = self.env._("This register does not exist any more.")
            return values
        config.check_access("read")
        info = sale_info.sale_info(meter, amount, config.currency_id, config.company_id)
        if info["reason"]:
            values["refusal"] = info["reason"]
            return values
        quote = info["quote"]
        values.update(
            kwh=quote["kwh"],
            credit_money=quote.get("credit_money", 0.0),
            bands_info=info["tiers_info"] if info.get("bands") else "",
            price_per_kwh=quote["price_per_kwh"],
            price_info=info["price_info"],
            tax_ids=info["tariff"].tax_ids.ids,
            estimated_balance_kwh=meter.sudo()._smartpm_estimated_balance_kwh(quote["kwh"]),
        )
        # the receipt the sale would print (services/receipt.py): debt and energy split
        split = receipt.quote_split(meter, info)
        values.update(
            estimated_balance_kwh=split["new_balance_kwh"],
            receipt_lines=split["lines"],
        )
        return values

    # ---------------------------------------------------------------- load-trip recovery
    # (issue 17 §3) One block: settings (tariff defaults, meter override), their push to the
    # meter (set_load_recovery job), and the relay/lockout state from the meter's events.
    load_recovery_override = fields.Boolean(
        string="Own load-trip recovery",
        help="Use the reconnect delay and attempts below instead of the tariff's.",
    )
    load_reconnect_delay_s = fields.Integer(
        string="Reconnect delay (s)",
        default=60,
        tracking=True,
        help="After a load trip the meter waits this long, then closes the relay by itself.",
    )
    load_reconnect_attempts = fields.Integer(
        string="Reconnections per hour",
        default=0,
        tracking=True,
        help="How many times in a rolling hour the meter reconnects by itself after a load "
        "trip. One more trip in that hour locks it out: the relay stays open until an "
        "operator presses Reconnect. 0: the meter never reconnects by itself.",
    )
    effective_load_reconnect_delay_s = fields.Integer(
        string="Reconnect delay in force (s)", compute="_compute_effective_load_recovery"
    )
    effective_load_reconnect_attempts = fields.Integer(
        string="Reconnections per hour in force", compute="_compute_effective_load_recovery"
    )
    load_trip_state = fields.Selection(
        [
            ("normal", "Normal"),
            ("tripped", "Load trip (open)"),
            ("lockout", "Locked out"),
        ],
        string="Load-trip state",
        default="normal",
        readonly=True,
        copy=False,
        tracking=True,
        help="From the meter's events: open after a load trip (it may reconnect by itself), "
        "or locked out after too many trips in an hour until an operator reconnects it.",
    )
    load_trip_state_time = fields.Datetime(
        string="Load-trip state since", readonly=True, copy=False
    )

    @api.constrains("load_reconnect_delay_s", "load_reconnect_attempts")
    def _check_load_recovery(self):
        for meter in self:
            meter._smartpm_check_load_recovery_values(
                meter.serial_number, meter.load_reconnect_delay_s, meter.load_reconnect_attempts
            )

    @api.model
    def _smartpm_check_load_recovery_values(self, name, delay_s, attempts):
        if not 0 <= delay_s <= MAX_RECONNECT_DELAY_S:
            raise ValidationError(
                self.env._(
                    "%(name)s: the reconnect delay must be between 0 and %(max)s seconds.",
                    name=name,
                    max=MAX_RECONNECT_DELAY_S,
                )
            )
        if not 0 <= attempts <= MAX_RECONNECT_ATTEMPTS:
            raise ValidationError(
                self.env._(
                    "%(name)s: the reconnections per hour must be between 0 and %(max)s.",
                    name=name,
                    max=MAX_RECONNECT_ATTEMPTS,
                )
            )

    @api.depends(
        "load_recovery_override",
        "load_reconnect_delay_s",
        "load_reconnect_attempts",
        "tariff_id.load_reconnect_delay_s",
        "tariff_id.load_reconnect_attempts",
        "tenant_id.smartpm_tariff_id",
    )
    def _compute_effective_load_recovery(self):
        for meter in self:
            delay, attempts = meter._get_load_recovery()
            meter.effective_load_reconnect_delay_s = delay
            meter.effective_load_reconnect_attempts = attempts

    def _get_load_recovery(self):
        """(reconnect delay s, reconnections per hour): the tariff's unless the meter has
        its own."""
        self.ensure_one()
        tariff = self._get_tariff()
        if tariff and not self.load_recovery_override:
            return tariff.load_reconnect_delay_s, tariff.load_reconnect_attempts
        return self.load_reconnect_delay_s, self.load_reconnect_attempts

    def _smartpm_load_recovery_before(self, vals):
        """write(): the settings in force before, when ``vals`` may change them."""
        if not LOAD_RECOVERY_FIELDS & set(vals):
            return {}
        return {m.id: m._get_load_recovery() for m in self}

    def _smartpm_push_load_recovery_changed(self, before):
        """write(): push to the meters whose settings in force changed (once per change)."""
        if before:
            self.filtered(lambda m: m._get_load_recovery() != before[m.id])._push_load_recovery()

    def _push_load_recovery(self):
        meters = self._commandable()
        meters._supersede("set_load_recovery")
        vals_list = []
        for meter in meters:
            delay, attempts = meter._get_load_recovery()
            vals_list.append(
                {
                    "meter_id": meter.id,
                    "job_type": "set_load_recovery",
                    "payload": {
                        "reconnect_delay_s": delay,
                        "reconnect_attempts_per_hour": attempts,
                    },
                    "priority": THRESHOLD_PRIORITY,
                }
            )
        return engine.create(self.env["smartpm.meter.job"], vals_list)

    def _smartpm_apply_load_alarms(self, alarms):
        """New load alarms (from the meter's events) move the relay and load-trip state, when
        newer than the state Odoo holds (an event read late does not undo a reconnect). A
        reconnection by itself ends the load trips before it: their alarms are cleared."""
        states = {
            "load_trip": ("tripped", "disconnected"),
            "load_lockout": ("lockout", "disconnected"),
            "load_reconnected": ("normal", "connected"),
        }
        for alarm in alarms.sorted(lambda a: (a.meter_time, a.id)):
            meter = alarm.meter_id.sudo()
            if alarm.alarm_type == "load_reconnected":
                meter._smartpm_clear_load_alarms(
                    ("load_trip",), self.env._("The meter reconnected by itself."), before=alarm
                )
            since = meter.load_trip_state_time
            if alarm.alarm_type not in states or (since and alarm.meter_time < since):
                continue
            state, relay = states[alarm.alarm_type]
            meter.write(
                {
                    "load_trip_state": state,
                    "load_trip_state_time": alarm.meter_time,
                    "relay_state": relay,
                }
            )

    def _smartpm_load_state_from_result(self, job_type, result):
        """Values for the meter from a job result: a reconnect that closed the relay ends a
        load trip or lockout; set_load_recovery reads the meter's state back."""
        self.ensure_one()
        meter_state = {"normal": "normal", "waiting": "tripped", "lockout": "lockout"}
        state = None
        if job_type == "reconnect" and result.get("relay") == "connected":
            state = "normal"
        elif result.get("load_recovery") in meter_state:
            state = meter_state[result["load_recovery"]]
        if state is None or state == self.load_trip_state:
            return {}
        now = fields.Datetime.now()
        since = self.load_trip_state_time
        return {"load_trip_state": state, "load_trip_state_time": max(now, since or now)}

    def _smartpm_clear_load_alarms(self, alarm_types, message, before=None):
        """Clear the open alarms of ``alarm_types``; only those of events before the alarm
        ``before`` when given (same meter time: logged before it, a lower id)."""
        domain = [
            ("meter_id", "in", self.ids),
            ("alarm_type", "in", list(alarm_types)),
            ("state", "in", ("new", "acknowledged")),
        ]
        if before:
            t = before.meter_time
            domain += [
                "|",
                ("meter_time", "<", t),
                "&",
                ("meter_time", "=", t),
                ("id", "<", before.id),
            ]
        self.env["smartpm.alarm"].sudo().search(domain)._clear(message)

    # ---------------------------------------------------------------- emergency credit
    # (issue 17 §1, services/emergency.py) One block: the meter's emergency state from job
    # results, the cashier's button, and the settings' push when the tariff in force changes.
    emergency_status = fields.Selection(
        [
            ("enabled", "Not available"),
            ("selectable", "Available"),
            ("in_use", "In use"),
            ("exhausted", "Used up"),
        ],
        string="Emergency credit",
        readonly=True,
        copy=False,
        tracking=True,
        help="As the meter last reported it: available once credit is at or below the "
        "tariff's level; in use after the tenant took it (portal, cashier or the meter's "
        "button) until a purchase repays it.",
    )
    emergency_in_use_kwh = fields.Float(
        string="Emergency credit in use (kWh)",
        digits=(16, 3),
        readonly=True,
        copy=False,
        help="Emergency credit taken and not yet repaid: the next purchase repays it first.",
    )
    emergency_in_use_money = fields.Float(
        string="Emergency credit in use (money)",
        digits=(16, 3),
        readonly=True,
        copy=False,
        help="Money-mode meters: emergency credit in currency taken and not yet repaid.",
    )
    emergency_can_take = fields.Boolean(
        string="May take emergency credit", compute="_compute_emergency_can_take"
    )

    @api.depends(
        "emergency_status", "credit_kwh", "credit_money", "tariff_id", "tenant_id", "state"
    )
    def _compute_emergency_can_take(self):
        """Eligible, and no take on its way already (the button would make no new one)."""
        for meter in self:
            sudo = meter.sudo()
            meter.emergency_can_take = not emergency.refusal(sudo) and not (
                meter.id and emergency.pending_take(sudo)
            )

    def _smartpm_emergency_before(self, vals):
        """write(): the emergency settings in force before, when ``vals`` may change them."""
        if not {"tariff_id", "tenant_id"} & set(vals):
            return {}
        return emergency.settings_before(self)

    def action_take_emergency_credit(self):
        """Cashier or operator button: take emergency credit for the tenant."""
        if not self.env.user.has_group("smartpm_prepay.group_cashier"):
            raise UserError(
                self.env._("Only cashiers and operators take emergency credit for a tenant.")
            )
        self.check_access("read")
        self._check_can_command()
        for meter in self:
            emergency.take(meter, self.env._("by %(user)s", user=self.env.user.name))
        return self._notify_queued(self.env._("Emergency credit requested"))

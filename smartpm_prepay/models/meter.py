import re
import secrets

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..services import engine

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


class SmartpmMeter(models.Model):
    _name = "smartpm.meter"
    _description = "Smart meter"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _rec_name = "serial_number"
    _order = "serial_number"
    _check_company_auto = True

    serial_number = fields.Char(required=True, index="trigram", tracking=True, copy=False)
    meter_model = fields.Char(string="Meter model", default="SmartPM 1100Net")
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
        string="Tenant",
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
    load_limit_w = fields.Integer(string="Load limit (W)", default=0, tracking=True)

    # Last known state, filled from job results
    credit_kwh = fields.Float(string="Last known credit (kWh)", readonly=True, copy=False)
    relay_state = fields.Selection(
        [("unknown", "Unknown"), ("connected", "Connected"), ("disconnected", "Disconnected")],
        default="unknown",
        readonly=True,
        copy=False,
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
        ("load_limit_positive", "CHECK(load_limit_w >= 0)", "The load limit cannot be negative."),
    ]

    # ---------------------------------------------------------------- constraints
    @api.constrains("serial_number")
    def _check_serial_number(self):
        for meter in self:
            if not SERIAL_RE.match(meter.serial_number or ""):
                raise ValidationError(
                    _(
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
            return _("Meter %(serial)s is already registered by another company.", serial=serial)
        if clash.tenant_id:
            return _(
                "Meter %(serial)s is already registered for %(tenant)s.",
                serial=serial,
                tenant=clash._tenant_text(clash.tenant_id),
            )
        if not clash.active:
            return _("Meter %(serial)s is already registered (archived).", serial=serial)
        return _("Meter %(serial)s is already registered, without a tenant.", serial=serial)

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
                    _("Serial number %(serial)s is given to two meters.", serial=serial)
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
            return {"warning": {"title": _("Serial number already registered"), "message": message}}
        return None

    @api.depends("tenant_id.name", "tenant_id.tenant_number")
    def _compute_tenant_label(self):
        for meter in self:
            tenant = meter.tenant_id
            if tenant and not tenant.tenant_number and not tenant._origin:
                # in the dialog of a tenant not saved yet
                meter.tenant_label = _("%s (number given on save)", tenant.name or _("new tenant"))
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
                        _(
                            "Meter %(serial)s: a TCP connection needs a host and a port "
                            "between 1 and 65535.",
                            serial=meter.serial_number,
                        )
                    )
            else:
                if not meter.device:
                    raise ValidationError(
                        _(
                            "Meter %(serial)s: a serial connection needs a device.",
                            serial=meter.serial_number,
                        )
                    )
                if meter.framing != "hdlc":
                    raise ValidationError(_("Serial connections use HDLC framing."))
                if meter.baudrate not in (300, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200):
                    raise ValidationError(_("Unsupported baud rate %s.", meter.baudrate))
            if not (0 < meter.client_address <= 0x7F):
                raise ValidationError(_("The DLMS client address must be between 1 and 127."))
            for value in (meter.server_logical_address, meter.server_physical_address):
                if not (0 <= value <= 0x3FFF):
                    raise ValidationError(_("DLMS server addresses must be between 0 and 16383."))

    @api.constrains(
        "auth", "auth_password", "auth_key", "encryption_key", "system_title", "client_address"
    )
    def _check_auth(self):
        for meter in self.sudo():
            if meter.auth == "lls" and not meter.auth_password:
                raise ValidationError(
                    _(
                        "Meter %(serial)s: low-level security needs a password.",
                        serial=meter.serial_number,
                    )
                )
            if meter.auth != "none" and meter.client_address == PUBLIC_CLIENT:
                raise ValidationError(
                    _(
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
                            _(
                                "Meter %(serial)s: HLS-GMAC needs the meter's %(key)s, "
                                "32 hexadecimal digits (16 bytes); %(problem)s.",
                                serial=meter.serial_number,
                                key=meter._fields[fname]._description_string(self.env),
                                problem=_("it is %(len)s characters long", len=len(key))
                                if key
                                else _("it is empty"),
                            )
                        )
                if meter.system_title and not HEX_TITLE_RE.match(meter.system_title.upper()):
                    raise ValidationError(
                        _(
                            "Meter %(serial)s: the meter system title is 16 hexadecimal "
                            "digits (8 bytes), or empty to take the one the meter sends.",
                            serial=meter.serial_number,
                        )
                    )

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
        vals_list = [self._normalize_vals(dict(v)) for v in vals_list]
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
        return meters

    def write(self, vals):
        vals = self._normalize_vals(dict(vals))
        if vals.get("serial_number"):
            if len(self) > 1:
                raise ValidationError(_("Two meters cannot have the same serial number."))
            self._check_serials_free([vals])
        if vals.get("state") in ("active", "disconnected") and "date_activated" not in vals:
            never = self.filtered(lambda m: not m.date_activated)
            if never:
                never.write({"date_activated": fields.Datetime.now()})
        if "tenant_id" not in vals:
            return super().write(vals)
        new_tenant = vals["tenant_id"]
        moving = self.filtered(lambda m: m.tenant_id.id != (new_tenant or False))
        if new_tenant and moving.filtered(lambda m: m.state == "decommissioned"):
            raise UserError(_("A decommissioned meter cannot be assigned to a tenant."))
        moving._close_assignments()
        res = super().write(vals)
        if new_tenant:
            moving._open_assignments()
        return res

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
                _(
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
    def _prepare_bridge_values(self):
        """How the bridge reaches this meter (docs/job-protocol.md); called under sudo."""
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
            raise UserError(_("Decommissioned or archived meters take no commands."))

    def action_read_now(self):
        from .job import BILLING_OBJECTS

        self._check_can_command()
        self._enqueue_job("read", {"objects": BILLING_OBJECTS}, priority=20)
        return self._notify_queued(_("Reading queued"))

    def action_ping(self):
        self._check_can_command()
        self._enqueue_job("ping", {}, priority=30)
        return self._notify_queued(_("Ping queued"))

    def action_disconnect(self):
        self._check_can_command()
        self._enqueue_job("disconnect", {}, priority=15)
        return self._notify_queued(_("Disconnect queued"))

    def action_reconnect(self):
        self._check_can_command()
        self._enqueue_job("reconnect", {}, priority=15)
        return self._notify_queued(_("Reconnect queued"))

    def _notify_queued(self, title):
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": title,
                "message": _("The meter bridge will run it in a few seconds."),
                "type": "info",
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def action_view_jobs(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("Jobs"),
            "res_model": "smartpm.meter.job",
            "view_mode": "list,form",
            "domain": [("meter_id", "=", self.id)],
        }

    # ---------------------------------------------------------------- actions
    def action_activate(self):
        for meter in self:
            if meter.state == "decommissioned":
                raise UserError(_("Meter %s is decommissioned.", meter.serial_number))
        self.filtered(lambda m: m.state == "draft").write({"state": "active"})

    def action_decommission(self):
        """End of life: the tenant is released and the meter archived; history stays."""
        self.write({"tenant_id": False, "state": "decommissioned", "active": False})

    def action_view_assignments(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("Tenant history"),
            "res_model": "smartpm.meter.assignment",
            "view_mode": "list,form",
            "domain": [("meter_id", "=", self.id)],
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
                    _(
                        "Meter %(serial)s: the token key is 32 hexadecimal digits.",
                        serial=meter.serial_number,
                    )
                )

    def _get_token_key(self):
        """The meter's token key as bytes, or None (read in sudo: Manager-only field)."""
        self.ensure_one()
        key = self.sudo().token_key
        return bytes.fromhex(key) if key and HEX_KEY_RE.match(key.upper()) else None


class SmartpmMeterAssignment(models.Model):
    _name = "smartpm.meter.assignment"
    _description = "Meter assignment to a tenant"
    _order = "date_start desc, id desc"
    _check_company_auto = True

    meter_id = fields.Many2one(
        "smartpm.meter", required=True, ondelete="cascade", index=True, check_company=True
    )
    tenant_id = fields.Many2one(
        "res.partner", required=True, ondelete="restrict", index=True, check_company=True
    )
    company_id = fields.Many2one(related="meter_id.company_id", store=True, index=True)
    date_start = fields.Datetime(required=True, default=fields.Datetime.now)
    date_end = fields.Datetime()
    is_open = fields.Boolean(compute="_compute_is_open", store=True)

    _sql_constraints = [
        (
            "dates_order",
            "CHECK(date_end IS NULL OR date_end >= date_start)",
            "An assignment cannot end before it starts.",
        ),
    ]

    def init(self):
        # One open assignment per meter must hold under concurrency: a partial unique index.
        self.env.cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS smartpm_meter_assignment_one_open
            ON smartpm_meter_assignment (meter_id) WHERE date_end IS NULL
            """
        )

    @api.depends("date_end")
    def _compute_is_open(self):
        for assignment in self:
            assignment.is_open = not assignment.date_end

    @api.depends("meter_id", "tenant_id")
    def _compute_display_name(self):
        for assignment in self:
            assignment.display_name = (
                f"{assignment.meter_id.serial_number} → {assignment.tenant_id.display_name}"
            )

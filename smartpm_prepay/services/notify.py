"""Telling people at once (issue 18 §4, §5): the owner's staff of alarms, tenants of their
credit, trips, reconnections and delivered purchases.

Owners: per alarm type and company, a rule (``smartpm.alarm.notify.rule``) names the
responsible users and the channels: a live notification on the user's partner bus channel
(Odoo's ``simple_notification``, shown by the web client on every back-office page), an
e-mail (``mail.template``, queued) and an SMS (``sms.template``, queued in ``sms.sms``, sent
by whatever SMS provider the ``sms`` module is set up with).

Tenants: by e-mail and/or SMS as they chose in the portal (``res.partner``
``smartpm_notify_email`` / ``smartpm_notify_sms``), with templates the owner edits (archive
one to stop that message).

Nothing is told twice for one event: every (event, channel, recipient) is claimed first in
``smartpm_notification_log`` under a unique key (INSERT ... ON CONFLICT DO NOTHING) and sent
only when the claim is new. An event's key is the meter event itself (meter, alarm type,
time on the meter), the purchase or the job, so the same event ingested again from the log
later, pushed and then read, or a delivery reported twice, tells nobody again. Everything
is in the transaction: a rolled-back ingest sends nothing.
"""

import logging

from odoo import Command, fields

_logger = logging.getLogger(__name__)

# alarm type -> (mail template, sms template) xml ids sent to the tenant
TENANT_ALARM_TEMPLATES = {
    "low_credit": ("mail_template_low_credit", "sms_template_low_credit"),
    "zero_credit": ("mail_template_zero_credit", "sms_template_zero_credit"),
    "credit_trip": ("mail_template_credit_trip", "sms_template_credit_trip"),
    "load_trip": ("mail_template_load_trip", "sms_template_load_trip"),
    "load_lockout": ("mail_template_load_lockout", "sms_template_load_lockout"),
    "friendly_deferred": ("mail_template_friendly_deferred", "sms_template_friendly_deferred"),
}
# the meter's relay closed again (rendered on the meter)
TENANT_RECONNECTED = ("mail_template_reconnected", "sms_template_reconnected")
# a purchase's credit is on the meter (rendered on the purchase)
TENANT_DELIVERED = ("mail_template_purchase_delivered", "sms_template_purchase_delivered")
# owner's defaults when a rule names no template
OWNER_TEMPLATES = ("mail_template_alarm_owner", "sms_template_alarm_owner")
MODULE = "smartpm_prepay"


def alarm_key(alarm):
    """The meter event an alarm stands for: the same event is the same key, whichever way it
    came (pushed, read from the log, read again)."""
    when = fields.Datetime.to_string(alarm.meter_time)
    return f"alarm:{alarm.meter_id.id}:{alarm.alarm_type}:{when}"


def _template(env, xmlid, model):
    record = env.ref(f"{MODULE}.{xmlid}", raise_if_not_found=False) if xmlid else None
    if not record:
        return env[model]
    return record.sudo()


def _claim(env, key, channel, partner, record, audience, kind, company):
    """The row that says (key, channel, partner) is told, or None when it was already."""
    return _claim_many(env, [(key, channel, partner, record, audience, kind, company)])[0]


def _claim_many(env, claims):
    """_claim of many (key, channel, partner, record, audience, kind, company) in one INSERT:
    for each, its new log row, or None when it was told already (or earlier in the list)."""
    if not claims:
        return []
    env.cr.execute(
        """
        INSERT INTO smartpm_notification_log
            (event_key, channel, partner_id, res_model, res_id, audience, kind, company_id,
             state, create_uid, write_uid, create_date, write_date)
        SELECT c.key, c.channel, c.partner_id, c.res_model, c.res_id, c.audience, c.kind,
               c.company_id, 'queued', %s, %s,
               now() at time zone 'utc', now() at time zone 'utc'
          FROM unnest(%s::varchar[], %s::varchar[], %s::int[], %s::varchar[], %s::int[],
                      %s::varchar[], %s::varchar[], %s::int[])
               WITH ORDINALITY
               AS c(key, channel, partner_id, res_model, res_id, audience, kind, company_id, n)
         ORDER BY c.n
        ON CONFLICT (event_key, channel, partner_id) DO NOTHING
        RETURNING id, event_key, channel, partner_id
        """,
        [
            env.uid,
            env.uid,
            [c[0] for c in claims],
            [c[1] for c in claims],
            [c[2].id for c in claims],
            [c[3]._name for c in claims],
            [c[3].id for c in claims],
            [c[4] for c in claims],
            [c[5] for c in claims],
            [c[6].id or None for c in claims],
        ],
    )
    new = {
        (key, channel, partner_id): log_id for log_id, key, channel, partner_id in env.cr.fetchall()
    }
    Log = env["smartpm.notification.log"].sudo()
    out = []
    for c in claims:
        log_id = new.pop((c[0], c[1], c[2].id), None)  # a repeat in the list: told already
        out.append(Log.browse(log_id) if log_id else None)
    return out


def _usable(template):
    """A template that exists and is not archived (mail.template has ``active``)."""
    return bool(template) and ("active" not in template._fields or template.active)


def _skip(log, note):
    log.write({"state": "skipped", "note": note})


def _send_email(log, template, record, partner):
    _send_emails(template, partner, [(log, record)])


def _send_emails(template, partner, told):
    """``template`` rendered on each record of ``told`` [(log, record)] to ``partner``: one
    batch (the template is compiled once for all, not once per record)."""
    if not _usable(template):
        return _skip_all(told, "no active e-mail template")
    if not partner.email:
        return _skip_all(told, "the recipient has no e-mail address")
    # queued (force_send=False): a mail server outage never blocks an ingest
    mails = template.send_mail_batch(
        [record.id for _log, record in told],
        force_send=False,
        email_values={"recipient_ids": [Command.set(partner.ids)]},
    )
    for (log, _record), mail in zip(told, mails, strict=True):
        log.write({"mail_id": mail.id})


def _send_sms(log, template, record, partner):
    _send_sms_batch(template, partner, [(log, record)])


def _send_sms_batch(template, partner, told):
    """``template`` rendered on each record of ``told`` [(log, record)], queued for
    ``partner``'s mobile: one render, one create."""
    if not _usable(template):
        return _skip_all(told, "no SMS template")
    number = partner.mobile or partner.phone
    if not number:
        return _skip_all(told, "the recipient has no mobile or phone number")
    records = told[0][1].browse([record.id for _log, record in told])
    bodies = template._render_field("body", records.ids, compute_lang=True)
    number = partner._phone_format(number=number) or number
    sms = (
        records.env["sms.sms"]
        .sudo()
        .create(
            [
                {
                    "partner_id": partner.id,
                    "number": number,
                    "body": bodies[record.id],
                    "state": "outgoing",  # queued: the SMS cron sends it
                }
                for _log, record in told
            ]
        )
    )
    for (log, _record), one in zip(told, sms, strict=True):
        log.write({"sms_id": one.id})


def _skip_all(told, note):
    for log, _record in told:
        _skip(log, note)


def _tell(env, key, channel, partner, record, audience, kind, company, send, *args):
    """Claim (key, channel, partner), then ``send(log, *args)`` if the claim is new."""
    log = _claim(env, key, channel, partner, record, audience, kind, company)
    if log is None:
        return False
    send(log, *args)
    return True


# ---------------------------------------------------------------- owners
def _live_message(alarm, user):
    from ..models.alarm import ROUTINE_TYPES  # noqa: PLC0415 - the model imports this module

    alarm = alarm.with_context(lang=user.lang or None)
    labels = dict(alarm._fields["alarm_type"]._description_selection(alarm.env))
    meter = alarm.meter_id
    where = alarm.site_id.name or meter.site_id.name or ""
    # formatted out of the _() call: Babel's extractor evaluates an f-string found there
    where = f" ({where})" if where else ""
    env = alarm.env
    return {
        "type": "warning" if alarm.alarm_type in ROUTINE_TYPES else "danger",
        "sticky": True,
        "title": env._("Alarm: %(type)s", type=labels.get(alarm.alarm_type, "")),
        "message": env._(
            "Meter %(meter)s%(where)s at %(time)s (meter time, UTC). Open Prepaid Electricity "
            "> Operations > Alarms.",
            meter=meter.serial_number,
            where=where,
            time=fields.Datetime.to_string(alarm.meter_time),
        ),
    }


def _send_live(log, alarm, user):
    user.partner_id._bus_send("simple_notification", _live_message(alarm, user))


def alarms_created(alarms):
    """Tell the responsible users of each new alarm, per its type's rule."""
    alarms = alarms.sudo()
    if not alarms:
        return
    env = alarms.env
    rules = env["smartpm.alarm.notify.rule"].search(
        [
            ("company_id", "in", alarms.company_id.ids),
            ("alarm_type", "in", list(set(alarms.mapped("alarm_type")))),
        ]
    )
    by_key = {(r.company_id.id, r.alarm_type): r for r in rules}
    default_mail, default_sms = (
        _template(env, OWNER_TEMPLATES[0], "mail.template"),
        _template(env, OWNER_TEMPLATES[1], "sms.template"),
    )
    claims, sends = [], []  # every (event, channel, recipient) claimed in one INSERT
    for alarm in alarms:
        rule = by_key.get((alarm.company_id.id, alarm.alarm_type))
        if not rule:
            continue
        key = alarm_key(alarm)
        mail_template = rule.mail_template_id.sudo() or default_mail
        sms_template = rule.sms_template_id.sudo() or default_sms
        for user in rule._get_recipients(alarm):
            partner = user.partner_id
            about = (partner, alarm, "owner", alarm.alarm_type, alarm.company_id)
            for on, channel, template in (
                (rule.notify_live, "live", None),
                (rule.notify_email, "email", mail_template),
                (rule.notify_sms, "sms", sms_template),
            ):
                if on:
                    claims.append((key, channel, *about))
                    sends.append((channel, template, user, alarm))
    # e-mails and SMS by template and recipient: each template rendered once for its alarms
    batches = {}
    for log, (channel, template, user, alarm) in zip(_claim_many(env, claims), sends, strict=True):
        if log is None:
            continue
        if channel == "live":
            _send_live(log, alarm, user)
        else:
            batches.setdefault((channel, template, user.partner_id), []).append((log, alarm))
    for (channel, template, partner), told in batches.items():
        (_send_emails if channel == "email" else _send_sms_batch)(template, partner, told)


# ---------------------------------------------------------------- tenants
def tell_tenant(tenant, record, key, kind, templates):
    """Tell ``tenant`` of ``record`` (key ``key``) on the channels they chose."""
    tenant = tenant.sudo()
    if not tenant:
        return
    env = record.env
    record = record.sudo()
    company = record.company_id if "company_id" in record._fields else env.company
    mail_xmlid, sms_xmlid = templates
    about = (tenant, record, "tenant", kind, company)
    if tenant.smartpm_notify_email:
        template = _template(env, mail_xmlid, "mail.template")
        _tell(env, key, "email", *about, _send_email, template, record, tenant)
    if tenant.smartpm_notify_sms:
        template = _template(env, sms_xmlid, "sms.template")
        _tell(env, key, "sms", *about, _send_sms, template, record, tenant)


def tenant_alarms(alarms):
    """Credit and trip alarms, to the tenant who held the meter then and holds it still (an
    event of a previous tenant's period, read late, is not the new tenant's)."""
    for alarm in alarms.sudo():
        tenant = alarm.meter_id.tenant_id
        if not tenant or (alarm.tenant_id and alarm.tenant_id != tenant):
            continue
        if alarm.alarm_type == "load_reconnected":
            tell_tenant(tenant, alarm.meter_id, alarm_key(alarm), "reconnected", TENANT_RECONNECTED)
        elif alarm.alarm_type in TENANT_ALARM_TEMPLATES:
            templates = TENANT_ALARM_TEMPLATES[alarm.alarm_type]
            tell_tenant(tenant, alarm, alarm_key(alarm), alarm.alarm_type, templates)


def purchase_delivered(purchase):
    """The credit is on the meter: kWh and the new balance, once per purchase."""
    tell_tenant(
        purchase.tenant_id,
        purchase,
        f"purchase:{purchase.id}:delivered",
        "purchase_delivered",
        TENANT_DELIVERED,
    )


def meter_reconnected(meter, job):
    """A job's result shows the relay closed again on a meter that was disconnected."""
    tell_tenant(
        meter.tenant_id, meter, f"job:{job.id}:reconnected", "reconnected", TENANT_RECONNECTED
    )

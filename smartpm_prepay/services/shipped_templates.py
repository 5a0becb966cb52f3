"""Shipped mail and SMS templates brought up to date on upgrade (issue 17 leftover).

The addon's templates (data/mail_templates.xml, data/notify_templates.xml) are
``noupdate="1"``: the owner edits them, and an upgrade must not undo that. But then an
existing database never gets a corrected wording either (the friendly-period mail saying the
limit in money on a money-mode meter). So each module upgrade whose migration calls
:func:`refresh_shipped_templates` does what Odoo's "Reset Template" does, field by field and
only where the owner has not touched the text:

* ``PREVIOUS_SHIPPED`` lists, per template and field, every text an earlier version of the
  addon shipped (English, and each language of ``i18n/``, by its .po file's code);
* a field whose stored English text is one of them (the owner never changed it) is loaded
  again from the template's XML file; one holding anything else is the owner's and is kept,
  with a warning in the server log naming the template;
* of a refreshed field, each translation that is a shipped one (or a copy of a shipped
  English text) is replaced with the translation of today's ``i18n/`` (or dropped, falling
  back to the new English, when there is none); a translation the owner wrote is kept (and
  logged).

Add the text a template had before a change here, in the same commit as the change (and
bump the manifest's version with a migration calling this function), so that no shipped
text is ever left out.
"""

import logging

from lxml import etree

from odoo.tools.convert import xml_import
from odoo.tools.misc import file_path
from odoo.tools.translate import TranslationImporter, get_po_paths

_logger = logging.getLogger(__name__)

MODULE = "smartpm_prepay"

# 18.0.1.0.0 before issue 17 §1: the limit in kWh on every meter
_FRIENDLY_BODY_KWH = {
    "en_US": (
        "<div>\n"
        "    <p>Dear <t t-out=\"object.meter_id.tenant_id.name or ''\"/>,</p>\n"
        "    <p>The credit of your electricity meter "
        "<strong t-out=\"object.meter_id.serial_number or ''\"/>\n"
        "       has run out during a friendly period (friendly hours or a public holiday): "
        "your power\n"
        "       stays on, the credit going below zero (at most\n"
        '       <t t-out="object.company_id.smartpm_friendly_limit_kwh"/> kWh). '
        "What you use now is\n"
        "       repaid from your next purchase. Buy credit before the period ends, "
        "or the power is\n"
        "       cut then.</p>\n"
        "    <p><t t-out=\"object.company_id.name or ''\"/></p>\n"
        "</div>\n"
        "        "
    ),
    "fr": (
        "<div>\n"
        "    <p>Bonjour <t t-out=\"object.meter_id.tenant_id.name or ''\"/>,</p>\n"
        "    <p>Le crédit de votre compteur d'électricité "
        "<strong t-out=\"object.meter_id.serial_number or ''\"/>\n"
        "       est épuisé pendant une période de tolérance (heures de tolérance ou jour "
        "férié) : votre courant\n"
        "       reste rétabli, le crédit passant sous zéro (au plus\n"
        '       <t t-out="object.company_id.smartpm_friendly_limit_kwh"/> kWh). '
        "Ce que vous consommez maintenant est\n"
        "       remboursé par votre prochain achat. Achetez du crédit avant la fin de la "
        "période, sinon le courant\n"
        "       sera coupé à ce moment-là.</p>\n"
        "    <p><t t-out=\"object.company_id.name or ''\"/></p>\n"
        "</div>\n"
        "        "
    ),
    "es": (
        "<div>\n"
        "    <p>Estimado/a <t t-out=\"object.meter_id.tenant_id.name or ''\"/>:</p>\n"
        "    <p>El crédito de su medidor de electricidad "
        "<strong t-out=\"object.meter_id.serial_number or ''\"/>\n"
        "       se ha agotado durante un periodo amigable (horas amigables o un día "
        "festivo): su suministro\n"
        "       sigue activo y el crédito pasa a ser negativo (como máximo\n"
        '       <t t-out="object.company_id.smartpm_friendly_limit_kwh"/> kWh). '
        "Lo que consuma ahora se\n"
        "       paga con su próxima compra. Compre crédito antes de que termine el "
        "periodo, o el suministro\n"
        "       se cortará entonces.</p>\n"
        "    <p><t t-out=\"object.company_id.name or ''\"/></p>\n"
        "</div>\n"
        "        "
    ),
    "pt": (
        "<div>\n"
        "    <p>Caro(a) <t t-out=\"object.meter_id.tenant_id.name or ''\"/>,</p>\n"
        "    <p>O crédito do seu contador de eletricidade "
        "<strong t-out=\"object.meter_id.serial_number or ''\"/>\n"
        "       esgotou-se durante um período amigável (horas amigáveis ou um feriado): "
        "a sua energia\n"
        "       mantém-se ligada, ficando o crédito abaixo de zero (no máximo\n"
        '       <t t-out="object.company_id.smartpm_friendly_limit_kwh"/> kWh). '
        "O que consumir agora é\n"
        "       pago com a sua próxima compra. Compre crédito antes de o período "
        "terminar, ou a energia\n"
        "       será cortada nessa altura.</p>\n"
        "    <p><t t-out=\"object.company_id.name or ''\"/></p>\n"
        "</div>\n"
        "        "
    ),
    "zh_CN": (
        "<div>\n"
        "    <p>尊敬的 <t t-out=\"object.meter_id.tenant_id.name or ''\"/>：</p>\n"
        "    <p>您的电表 <strong t-out=\"object.meter_id.serial_number or ''\"/>\n"
        "       在友好时段（友好时间或法定节假日）内余额已用完：您的电力\n"
        "       不会中断，余额将降至零以下（最多\n"
        '       <t t-out="object.company_id.smartpm_friendly_limit_kwh"/> 千瓦时）。'
        "此期间的用电将\n"
        "       从您的下一次购电中扣还。请在该时段结束前购电，否则届时将断电。</p>\n"
        "    <p><t t-out=\"object.company_id.name or ''\"/></p>\n"
        "</div>\n"
        "        "
    ),
}

# xml id -> field -> language (en_US, or a .po file's code) -> texts shipped before today's
PREVIOUS_SHIPPED = {
    f"{MODULE}.mail_template_friendly_deferred": {
        "body_html": {lang: (text,) for lang, text in _FRIENDLY_BODY_KWH.items()},
    },
}


def _same(stored, texts):
    """Whether a stored text is one of the shipped ``texts`` (an HTML editor's or a database
    round trip's whitespace is not an edit)."""
    words = " ".join((stored or "").split())
    return any(words == " ".join(text.split()) for text in texts)


def _shipped_in(previous, lang):
    """The shipped texts of a language: its own .po's (``fr`` for fr_FR and fr_BE) and the
    English ones (a translation that is a copy of the English text)."""
    texts = list(previous.get("en_US", ()))
    for code in {lang, lang.split("_")[0]}:
        texts += previous.get(code, ())
    return texts


def _source_record(template, xmlid):
    """The ``<record>`` node of ``template`` in the XML file it was loaded from, or None."""
    try:
        fullpath = template.template_fs and file_path(template.template_fs)
    except FileNotFoundError:
        fullpath = None
    if not fullpath:
        return None, None
    name = xmlid.split(".", 1)[1]
    found = etree.parse(fullpath).xpath(
        "//record[@id = $name or @id = $xmlid]", name=name, xmlid=xmlid
    )
    return (found[0], fullpath) if found else (None, None)


def _source_text(record, field_name):
    """A field's text in the ``<record>`` node, as Odoo stores it when it loads the file."""
    node = record.find(f"field[@name='{field_name}']")
    if node is None:
        return None
    if node.get("type") in ("html", "xml"):
        return "".join(etree.tostring(child, encoding="unicode") for child in node)
    return node.text or ""


def _reload_fields(template, xmlid, record, fullpath, field_names):
    """Load ``field_names`` of ``template`` again from its ``<record>`` node, as Odoo's
    ``reset_template`` does for the whole record."""
    module, name = xmlid.split(".", 1)
    for node in record.findall("field"):
        if node.get("name") not in field_names:
            record.remove(node)
    env = template.env
    xml_import(env, module, {}, mode="init", xml_filename=fullpath)._tag_record(record)
    # the record stays the owner's to edit: the next upgrade must not load it
    env["ir.model.data"].search([("module", "=", module), ("name", "=", name)]).noupdate = True


def _reload_translations(template, xmlid, stale):
    """Put today's i18n/ translations in the stale ``{field: [lang]}`` of ``template``."""
    module, name = xmlid.split(".", 1)
    env = template.env
    for field_name, langs in stale.items():
        template.update_field_translations(field_name, dict.fromkeys(langs, False))
    importer = TranslationImporter(env.cr, verbose=False)
    for lang in {lang for langs in stale.values() for lang in langs}:
        for po_path in get_po_paths(module, lang):
            importer.load_file(po_path, lang, xmlids=[name, xmlid])
    # only the refreshed fields and languages: any other translation stays as it is
    by_field = importer.model_translations.get(template._name, {})
    for field_name in list(by_field):
        if field_name not in stale:
            del by_field[field_name]
            continue
        for translations in by_field[field_name].values():
            for lang in list(translations):
                if lang not in stale[field_name]:
                    del translations[lang]
    importer.model_terms_translations.clear()
    importer.save(force_overwrite=True)


def refresh_shipped_templates(env, previous=None):
    """Bring the templates of ``previous`` (default ``PREVIOUS_SHIPPED``) the owner has not
    edited to today's shipped text. Returns ``{"refreshed": [xml id], "kept": [xml id]}``."""
    previous = PREVIOUS_SHIPPED if previous is None else previous
    result = {"refreshed": [], "kept": []}
    installed = [code for code, _name in env["res.lang"].get_installed() if code != "en_US"]
    for xmlid, fields in previous.items():
        template = env.ref(xmlid, raise_if_not_found=False)
        if not template:
            continue
        template = template.with_context(active_test=False)
        record, fullpath = _source_record(template, xmlid)
        if record is None:
            _logger.warning("Template %s (%s): source file not found", template.display_name, xmlid)
            continue
        to_reload, stale, kept = [], {}, []
        for field_name, shipped in fields.items():
            stored = template._fields[field_name]._get_stored_translations(template) or {}
            if _same(stored.get("en_US"), [_source_text(record, field_name) or ""]):
                continue  # already today's text
            if not _same(stored.get("en_US"), shipped.get("en_US", ())):
                kept.append(field_name)
                continue
            to_reload.append(field_name)
            for lang in installed:
                if lang not in stored:
                    continue
                if _same(stored[lang], _shipped_in(shipped, lang)):
                    stale.setdefault(field_name, []).append(lang)
                else:
                    _logger.warning(
                        "Template %s (%s): the %s translation of %s was edited, kept as it "
                        "is; compare it with the new wording.",
                        template.display_name,
                        xmlid,
                        lang,
                        field_name,
                    )
        if kept:
            result["kept"].append(xmlid)
            _logger.warning(
                "Template %s (%s): %s edited by the owner, kept as it is; the new shipped "
                "wording is not applied (compare with the addon's file, or use Reset "
                "Template).",
                template.display_name,
                xmlid,
                ", ".join(kept),
            )
        if not to_reload:
            continue
        _reload_fields(template, xmlid, record, fullpath, to_reload)
        if stale:
            _reload_translations(template, xmlid, stale)
        template.invalidate_recordset()
        result["refreshed"].append(xmlid)
        _logger.info(
            "Template %s (%s): %s updated to the new wording",
            template.display_name,
            xmlid,
            ", ".join(to_reload),
        )
    return result

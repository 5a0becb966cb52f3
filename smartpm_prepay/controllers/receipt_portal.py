"""Tenant portal: the receipt of one of one's purchases (issue 17 §1, §2, §5).

``/my/purchases/<id>`` shows the split every channel prints (services/receipt.py): amount
paid, debt recovered and left, emergency and negative credit repaid, net energy, new
balance and transfer number; ``?report_type=pdf`` the same as a PDF (the back office's
Print > Receipt). Another tenant's purchase is a 404, as on the meter page."""

from odoo import http
from odoo.http import content_disposition, request

from .portal import SmartpmMeterPortal


class SmartpmReceiptPortal(SmartpmMeterPortal):
    def _get_own_purchase(self, purchase_id):
        """The logged-in tenant's purchase (theirs, as their meter page lists it, also of a
        meter replaced since), or 404 for any other id."""
        purchase = request.env["smartpm.credit.purchase"].search(
            [("id", "=", purchase_id), *self._get_tenant_domain()], limit=1
        )
        if not purchase:
            raise request.not_found()
        return purchase

    def _receipt_pdf(self, purchase, download=False):
        """The receipt PDF of the tenant's ``purchase`` (sudo: checked by the caller)."""
        report = request.env["ir.actions.report"].sudo().with_company(purchase.company_id)
        content, kind = report._render_qweb_pdf(
            "smartpm_prepay.action_report_purchase_receipt", purchase.ids
        )
        headers = [
            ("Content-Type", "application/pdf" if kind == "pdf" else "text/html"),
            ("Content-Length", len(content)),
            (
                "Content-Disposition",
                content_disposition(
                    f"Receipt-{purchase.name}.pdf",
                    disposition_type="attachment" if download else "inline",
                ),
            ),
        ]
        return request.make_response(content, headers=headers)

    @http.route(["/my/purchases/<int:purchase_id>"], type="http", auth="user", website=True)
    def portal_my_purchase(self, purchase_id, **kwargs):
        purchase = self._get_own_purchase(purchase_id).sudo()
        if kwargs.get("report_type") == "pdf":
            return self._receipt_pdf(purchase, download=kwargs.get("download") == "true")
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "page_name": "purchase",
                "purchase": purchase,
                "meter": purchase.meter_id,
                "tz": self._get_tz(purchase.meter_id),
            }
        )
        return request.render("smartpm_prepay.portal_my_purchase", values)

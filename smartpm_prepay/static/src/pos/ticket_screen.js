import { patch } from "@web/core/utils/patch";
import { _t } from "@web/core/l10n/translation";
import { AlertDialog } from "@web/core/confirmation_dialog/confirmation_dialog";
import { TicketScreen } from "@point_of_sale/app/screens/ticket_screen/ticket_screen";

patch(TicketScreen.prototype, {
    /** Credit is refunded only while its sale can be reversed: ask the server before the
     * refund order is made, so the cashier hears why at once (the sync checks it again). */
    async onDoRefund() {
        const order = this.getSelectedOrder();
        const creditLines = (order?.lines || []).filter(
            (line) => line.smartpm_meter_id && typeof line.id === "number"
        );
        const toRefund = creditLines.filter(
            (line) =>
                (order.lines.length === 1 && this._doesOrderHaveSoleItem(order)) ||
                !this.pos.isProductQtyZero(order.uiState.lineToRefund[line.uuid]?.qty || 0)
        );
        if (toRefund.length) {
            let refusals = [];
            try {
                refusals = await this.pos.data.call("pos.order", "smartpm_refund_refusals", [
                    toRefund.map((line) => line.id),
                ]);
            } catch {
                refusals = []; // offline: the server decides when the refund is synced
            }
            if (refusals.length) {
                this.dialog.add(AlertDialog, {
                    title: _t("Electricity credit"),
                    body: refusals.join("\n"),
                });
                return;
            }
        }
        return await super.onDoRefund(...arguments);
    },
});

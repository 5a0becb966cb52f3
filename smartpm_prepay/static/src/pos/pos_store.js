import { patch } from "@web/core/utils/patch";
import { _t } from "@web/core/l10n/translation";
import { AlertDialog } from "@web/core/confirmation_dialog/confirmation_dialog";
import { PosStore } from "@point_of_sale/app/store/pos_store";
import { makeAwaitable } from "@point_of_sale/app/store/make_awaitable_dialog";
import { MeterCreditPopup } from "./meter_credit_popup";

export function alertCreditLineLocked(dialog) {
    dialog.add(AlertDialog, {
        title: _t("Electricity credit"),
        body: _t("Remove the line and add the credit again to change it."),
    });
}

patch(PosStore.prototype, {
    async setDiscountFromUI(line, val) {
        // the amount is the credit the meter gets: it is asked for, not discounted
        if (line.smartpm_meter_id) {
            return alertCreditLineLocked(this.dialog);
        }
        return await super.setDiscountFromUI(...arguments);
    },

    isSmartpmCreditProduct(product) {
        const creditId = this.session._smartpm_credit_product_id;
        return Boolean(creditId && product && product.id === creditId);
    },

    get smartpmCreditProduct() {
        const creditId = this.session._smartpm_credit_product_id;
        return (creditId && this.models["product.product"].get(creditId)) || null;
    },

    /** The product screen's "Sell credit" button: no product to look for. */
    async sellSmartpmCredit() {
        const product = this.smartpmCreditProduct;
        if (!product) {
            this.dialog.add(AlertDialog, {
                title: _t("Electricity credit"),
                body: _t(
                    "The Electricity credit product is not available in this register: ask the manager to make it available in the Point of Sale."
                ),
            });
            return;
        }
        return await this.addLineToOrder({ product_id: product }, this.get_order());
    },

    /** The tenant of the meter becomes the customer of an order that has none. */
    async _smartpmSetTenantAsCustomer(order, tenantId) {
        if (!tenantId || order.get_partner()) {
            return;
        }
        let partner = this.models["res.partner"].get(tenantId);
        if (!partner) {
            [partner] = await this.data.read("res.partner", [tenantId]);
        }
        if (partner && !order.get_partner()) {
            // only the customer: the credit's price and taxes are the tariff's
            order.update({ partner_id: partner });
        }
    },

    async addLineToOrder(vals, order, opts = {}, configure = true) {
        const product =
            typeof vals.product_id === "number"
                ? this.models["product.product"].get(vals.product_id)
                : vals.product_id;
        if (!this.isSmartpmCreditProduct(product) || vals.smartpm_meter_id) {
            return await super.addLineToOrder(...arguments);
        }
        if (!this.session._smartpm_can_sell) {
            this.dialog.add(AlertDialog, {
                title: _t("Electricity credit"),
                body: _t(
                    "Only a user of the Cashier group of Prepaid Electricity may sell credit: ask the manager."
                ),
            });
            return;
        }
        if ((vals.qty ?? 1) <= 0) {
            this.dialog.add(AlertDialog, {
                title: _t("Electricity credit"),
                body: _t(
                    "Credit sold to a meter is not refunded by a negative line: refund its sale from the ticket screen (Refund)."
                ),
            });
            return;
        }
        const payload = await makeAwaitable(this.dialog, MeterCreditPopup, { product });
        if (!payload) {
            return;
        }
        // The meter joins the POS data so the line (and an order kept offline) can refer to it.
        const [meter] = await this.data.read("smartpm.meter", [payload.meter_id]);
        const taxes = payload.tax_ids
            .map((id) => this.models["account.tax"].get(id))
            .filter(Boolean);
        const line = await super.addLineToOrder(
            {
                ...vals,
                product_id: product,
                qty: 1,
                price_unit: payload.amount,
                tax_ids: taxes.map((tax) => ["link", tax]),
                smartpm_meter_id: meter,
                smartpm_kwh: payload.kwh,
                smartpm_balance_kwh: payload.estimated_balance_kwh,
            },
            order,
            { ...opts },
            false
        );
        if (line) {
            // what the popup previewed, for a receipt printed before the server answers
            line.uiState.smartpmPriceInfo = payload.price_info;
            line.uiState.smartpmReceiptLines = payload.receipt_lines || [];
        }
        await this._smartpmSetTenantAsCustomer(order, payload.tenant_id);
        return line;
    },
});

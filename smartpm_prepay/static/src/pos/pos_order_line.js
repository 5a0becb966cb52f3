import { patch } from "@web/core/utils/patch";
import { _t } from "@web/core/l10n/translation";
import { PosOrderline } from "@point_of_sale/app/models/pos_order_line";
import { Orderline } from "@point_of_sale/app/generic_components/orderline/orderline";

const TICKET_OWN_LINES = ["kwh", "new_balance_kwh"];

patch(PosOrderline.prototype, {
    can_be_merged_with(orderline) {
        // one line = one purchase for one meter
        if (this.smartpm_meter_id || orderline.smartpm_meter_id) {
            return false;
        }
        return super.can_be_merged_with(...arguments);
    },
    set_quantity(quantity, keep_price) {
        if (this.smartpm_meter_id && quantity !== "" && quantity !== "remove") {
            return {
                title: _t("Electricity credit"),
                body: _t("Remove the line and add the credit again to change it."),
            };
        }
        return super.set_quantity(...arguments);
    },
    // a method, not a getter: an object read through the reactive line would come back
    // as a proxy, which the customer display's BroadcastChannel cannot clone
    getSmartpmReceiptInfo() {
        const meter = this.smartpm_meter_id;
        if (!meter) {
            return undefined;
        }
        // kWh and reference of the purchase once the server answered the sync; until
        // then (offline) the kWh previewed and the order reference, which identify it.
        const kwh = this.smartpm_purchase_kwh || this.smartpm_kwh || 0;
        const balance = this.smartpm_balance_kwh;
        return {
            meter: meter.serial_number || "",
            tenant: [meter.tenant_name, meter.tenant_number && `(${meter.tenant_number})`]
                .filter(Boolean)
                .join(" "),
            kwh: `${kwh.toFixed(2)} kWh`,
            price: this.smartpm_price_info || this.uiState?.smartpmPriceInfo || "",
            balance: typeof balance === "number" && balance ? `${balance.toFixed(2)} kWh` : "",
            reference: this.smartpm_purchase_ref || "",
            // the split of the sale (services/receipt.py) once the server answered the
            // sync; until then the popup's preview of it
            // (the ticket prints the energy and the balance on lines of their own)
            split: [...(this.smartpm_receipt_lines || this.uiState?.smartpmReceiptLines || [])]
                .filter((row) => !TICKET_OWN_LINES.includes(row.key))
                .map((row) => ({ key: row.key, label: row.label, value: row.value })),
            orderReference: this.order_id?.pos_reference || this.order_id?.name || "",
        };
    },
    getDisplayData() {
        return { ...super.getDisplayData(), smartpm: this.getSmartpmReceiptInfo() };
    },
});

patch(Orderline, {
    props: {
        ...Orderline.props,
        line: {
            ...Orderline.props.line,
            shape: {
                ...Orderline.props.line.shape,
                smartpm: { type: Object, optional: true },
            },
        },
    },
});

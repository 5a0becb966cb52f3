import { patch } from "@web/core/utils/patch";
import { OrderSummary } from "@point_of_sale/app/screens/product_screen/order_summary/order_summary";
import { alertCreditLineLocked } from "./pos_store";

patch(OrderSummary.prototype, {
    async setLinePrice(line, price) {
        // a new amount needs a new kWh preview and the meter checked again
        if (line.smartpm_meter_id) {
            return alertCreditLineLocked(this.dialog);
        }
        return await super.setLinePrice(...arguments);
    },
});

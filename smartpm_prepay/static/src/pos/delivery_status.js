import { Component, useState, onMounted, onWillUnmount } from "@odoo/owl";
import { patch } from "@web/core/utils/patch";
import { usePos } from "@point_of_sale/app/store/pos_hook";
import { ReceiptScreen } from "@point_of_sale/app/screens/receipt_screen/receipt_screen";

const POLL_MS = 2000;
const POLL_MAX = 60; // two minutes: after that the back office follows up failed jobs
const FINAL_STATES = ["delivered", "failed", "reversed"];

/** Shows the cashier when the meters have received the credit sold. */
export class MeterDeliveryStatus extends Component {
    static template = "smartpm_prepay.MeterDeliveryStatus";
    static props = ["order"];

    setup() {
        this.pos = usePos();
        this.state = useState({ lines: [], offline: false });
        this.polls = 0;
        onMounted(() => this.poll());
        onWillUnmount(() => clearTimeout(this.timer));
    }

    formatMoney(value) {
        return this.env.utils.formatCurrency(value);
    }

    async poll() {
        const orderId = this.props.order.id;
        if (typeof orderId !== "number") {
            this.state.offline = true; // not synced yet: the order reference identifies it
            return;
        }
        try {
            this.state.lines = await this.pos.data.call("pos.order", "smartpm_credit_status", [
                orderId,
            ]);
            this.state.offline = false;
        } catch {
            this.state.offline = true;
        }
        const done =
            this.state.lines.length &&
            this.state.lines.every((line) => FINAL_STATES.includes(line.state));
        if (!done && ++this.polls < POLL_MAX) {
            this.timer = setTimeout(() => this.poll(), POLL_MS);
        }
    }
}

patch(ReceiptScreen, {
    components: { ...ReceiptScreen.components, MeterDeliveryStatus },
});
patch(ReceiptScreen.prototype, {
    get hasSmartpmCredit() {
        return this.currentOrder.lines.some((line) => line.smartpm_meter_id);
    },
});

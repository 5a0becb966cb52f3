/** @odoo-module **/
import publicWidget from "@web/legacy/js/public/public_widget";

const REFRESH_MS = 5000;

// While a purchase is on its way to the meter, reload the meter page so the tenant sees
// it delivered (and the new credit) without touching anything; but never while they are
// typing an amount or reading the figures they opened: the reload would throw that away.
publicWidget.registry.SmartpmMeterPage = publicWidget.Widget.extend({
    selector: ".o_smartpm_meter_page[data-delivering]",
    start() {
        this._schedule();
        return this._super(...arguments);
    },
    _schedule() {
        this._timer = setTimeout(() => this._refresh(), REFRESH_MS);
    },
    _isBusy() {
        const amount = this.el.querySelector(".o_smartpm_buy_form input[name=amount]");
        const form = this.el.querySelector(".o_smartpm_buy_form");
        return Boolean(
            (amount && amount.value) ||
                (form && form.contains(document.activeElement)) ||
                this.el.querySelector("details[open]")
        );
    },
    _refresh() {
        if (this._isBusy()) {
            this._schedule();
        } else {
            window.location.reload();
        }
    },
    destroy() {
        clearTimeout(this._timer);
        this._super(...arguments);
    },
});

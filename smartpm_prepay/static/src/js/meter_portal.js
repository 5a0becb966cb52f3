/** @odoo-module **/
import publicWidget from "@web/legacy/js/public/public_widget";

// While a purchase is on its way to the meter, reload the meter page so the tenant sees
// it delivered (and the new credit) without touching anything.
publicWidget.registry.SmartpmMeterPage = publicWidget.Widget.extend({
    selector: ".o_smartpm_meter_page[data-delivering]",
    start() {
        this._timer = setTimeout(() => window.location.reload(), 5000);
        return this._super(...arguments);
    },
    destroy() {
        clearTimeout(this._timer);
        this._super(...arguments);
    },
});

/** @odoo-module **/
import { registry } from "@web/core/registry";

// A tenant buys credit for a meter with the demo payment provider, lands back on the meter
// page and sees the purchase on its way to the meter.
registry.category("web_tour.tours").add("smartpm_portal_buy_credit", {
    url: "/my/meters",
    steps: () => [
        {
            content: "Open the meter",
            trigger: ".o_smartpm_meter_card:contains(TOUR-001)",
            run: "click",
        },
        {
            content: "Enter the amount",
            trigger: ".o_smartpm_buy_form input[name=amount]",
            run: "edit 12",
        },
        {
            content: "Buy credit",
            trigger: ".o_smartpm_buy_form button[type=submit]",
            run: "click",
        },
        {
            content: "Choose the demo provider",
            trigger: "input[name=o_payment_radio]",
            run: "click",
        },
        {
            content: "Card details (demo)",
            trigger: "#customer_input",
            run: "edit 4242424242424242",
        },
        {
            content: "Pay",
            trigger: "button[name=o_payment_submit_button]:enabled",
            run: "click",
        },
        {
            content: "Back on the meter page, the purchase is being delivered",
            trigger: ".o_smartpm_purchases .o_smartpm_state:contains(Delivering)",
            timeout: 30000,
        },
    ],
});

// After the bridge delivered the credit: the page shows it delivered and the new credit.
registry.category("web_tour.tours").add("smartpm_portal_credit_delivered", {
    steps: () => [
        {
            content: "The purchase is delivered",
            trigger: ".o_smartpm_purchases .o_smartpm_state:contains(Delivered)",
        },
        {
            content: "The new credit is shown",
            trigger: ".o_smartpm_credit:contains(48.0 kWh)",
        },
    ],
});

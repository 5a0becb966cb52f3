/** @odoo-module **/
import { registry } from "@web/core/registry";

// The payment form's steps with Odoo's demo provider (a card number it accepts).
const payWithTheDemoProvider = () => [
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
];

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
        ...payWithTheDemoProvider(),
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
            trigger: ".o_smartpm_credit:contains(48.00 kWh)",
        },
    ],
});

// The demo tenant (amina) from her portal home: the Meters card, her meter, its figures,
// then she buys credit with the demo provider and finds the purchase, under its CP number,
// on her meter page. The test (tests/journeys/test_tenant_journey.py) compares the figures.
registry.category("web_tour.tours").add("smartpm_tenant_journey", {
    url: "/my",
    steps: () => [
        {
            content: "Open the Meters card of the portal home",
            trigger: ".o_portal_index_card a[href='/my/meters']",
            run: "click",
        },
        {
            content: "Breadcrumbs lead back home",
            trigger: ".o_portal_submenu a[href='/my/home']",
        },
        {
            content: "Open her meter",
            trigger: ".o_smartpm_meter_card:contains(SIM00001)",
            run: "click",
        },
        {
            content: "Breadcrumbs lead back to the meters",
            trigger: ".o_portal_submenu a[href='/my/meters']",
        },
        {
            content: "The meter reading is in kWh",
            trigger: ".o_smartpm_last_reading_kwh:contains(kWh)",
        },
        {
            content: "The price says how the tariff charges",
            trigger: ".o_smartpm_price:contains(per kWh)",
        },
        {
            content: "The daily chart has an axis and bars",
            trigger: ".o_smartpm_chart_daily .o_smartpm_chart_tick + .o_smartpm_chart_tick",
        },
        {
            content: "Show the daily figures",
            trigger: ".o_smartpm_chart_daily summary",
            run: "click",
        },
        {
            content: "The figures are listed in kWh",
            trigger: ".o_smartpm_chart_daily .o_smartpm_chart_table td.o_smartpm_kwh:contains(kWh)",
        },
        {
            content: "Enter the amount",
            trigger: ".o_smartpm_buy_form input[name=amount]",
            run: "edit 3",
        },
        {
            content: "Buy credit",
            trigger: ".o_smartpm_buy_form button[type=submit]",
            run: "click",
        },
        {
            content: "The price of these kWh is shown before paying",
            trigger: "#o_payment_summary_price:contains(kWh at)",
        },
        ...payWithTheDemoProvider(),
        {
            content: "Back on the meter page, the new purchase has its CP number",
            trigger: ".o_smartpm_purchases .o_smartpm_purchase:first .o_smartpm_purchase_ref:contains(CP)",
            timeout: 30000,
        },
    ],
});

/**
 * The demo cashier sells credit in the back office, through his menu: Prepaid Electricity >
 * Sales > Sell credit, meter SIM00003, 12.00 paid in cash. What the wizard shows is logged
 * as "SMARTPM_SCREEN <name> <json>" for the Python test to compare with the purchase.
 */
import { registry } from "@web/core/registry";

const METER = "SIM00003";

function text(selector) {
    const el = document.querySelector(selector);
    return el ? el.textContent.replace(/\s+/g, " ").trim() : null;
}

function value(selector) {
    const el = document.querySelector(selector);
    return el ? el.value ?? el.textContent.trim() : null;
}

function report(name, values) {
    console.log(`SMARTPM_SCREEN ${name} ${JSON.stringify(values)}`);
}

const FIELD = (name) => `.modal .o_field_widget[name='${name}']`;

registry.category("web_tour.tours").add("smartpm_cashier_backoffice_sale", {
    steps: () => [
        {
            content: "the apps menu",
            trigger: ".o_navbar_apps_menu button",
            run: "click",
        },
        {
            content: "open the Prepaid Electricity app",
            trigger: ".o_app[data-menu-xmlid='smartpm_prepay.menu_root']",
            run: "click",
        },
        {
            content: "the Sales menu",
            trigger: ".o_menu_sections button:contains('Sales'), .o_menu_sections a:contains('Sales')",
            run: "click",
        },
        {
            content: "Sell credit",
            trigger: ".dropdown-item:contains('Sell credit')",
            run: "click",
        },
        {
            content: `type the meter ${METER}`,
            trigger: `${FIELD("meter_id")} input`,
            run: `edit ${METER}`,
        },
        {
            content: "choose it",
            trigger: `.o-autocomplete--dropdown-item a:contains('${METER}')`,
            run: "click",
        },
        {
            content: "the tenant is shown",
            trigger: `${FIELD("tenant_id")}:not(:empty)`,
        },
        {
            content: "a negative amount",
            trigger: `${FIELD("amount")} input`,
            run: "edit -5 && click .modal-body",
        },
        {
            content: "is refused with a clear message",
            trigger: `${FIELD("refusal")}:contains('cannot be negative')`,
            run() {
                report("wizard_negative", { refusal: text(FIELD("refusal")) });
            },
        },
        {
            content: "the amount the customer pays",
            trigger: `${FIELD("amount")} input`,
            run: "edit 12 && click .modal-body",
        },
        {
            content: "the kWh, price and new balance are previewed",
            trigger: `.modal:not(:has(.o_smartpm_wizard_refusal)) .o_field_widget[name="price_info"]:contains("per kWh")`,
            run() {
                report("wizard", {
                    kwh: value(`${FIELD("kwh")} input`) || text(FIELD("kwh")),
                    price: text(FIELD("price_info")),
                    balance:
                        value(`${FIELD("estimated_balance_kwh")} input`) ||
                        text(FIELD("estimated_balance_kwh")),
                    warning: text(".modal .o_smartpm_wizard_warning"),
                    limits: text(FIELD("limits_info")),
                });
            },
        },
        {
            content: "sell and invoice",
            trigger: ".modal-footer button[name='action_confirm']",
            run: "click",
        },
        {
            content: "the purchase is shown",
            trigger: `.o_form_view .o_field_widget[name='meter_id']:contains('${METER}')`,
        },
    ],
});

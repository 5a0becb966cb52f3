/**
 * The demo cashier's day, on the demo's data: from the Point of Sale dashboard he opens the
 * register of the Furniture Shop, sells credit to meter SIM00002 with the "Sell credit"
 * button, reads the receipt and closes the register.
 *
 * What the screens show is logged as "SMARTPM_SCREEN <name> <json>": the Python test
 * (tests/journeys/test_cashier_journey.py) compares each figure with the purchase, the POS
 * order and the meter, unit for unit.
 */
import * as Chrome from "@point_of_sale/../tests/tours/utils/chrome_util";
import * as ProductScreen from "@point_of_sale/../tests/tours/utils/product_screen_util";
import * as ReceiptScreen from "@point_of_sale/../tests/tours/utils/receipt_screen_util";
import { registry } from "@web/core/registry";
import {
    addCredit,
    openRegister,
    payCash,
    report,
    searchMeter,
    tapQuickAmount,
} from "@smartpm_prepay/../tests/tours/smartpm_cashier_steps";

export const SHOP = "Furniture Shop";
export const METER = "SIM00002";
export const QUICK_AMOUNT = "10";

registry.category("web_tour.tours").add("smartpm_cashier_journey", {
    steps: () =>
        [
            ...openRegister(SHOP),
            ...searchMeter(METER),
            {
                content: "the meter, its tenant and its last purchase",
                trigger: `.o_smartpm_selected_meter:contains('${METER}') .o_smartpm_last_purchase`,
                run() {
                    report("meter", {
                        selected: ".o_smartpm_selected_meter",
                        last_purchase: ".o_smartpm_last_purchase",
                        last_amount: ".o_smartpm_last_purchase .o_smartpm_last_amount",
                        last_kwh: ".o_smartpm_last_purchase .o_smartpm_last_kwh",
                        warning: ".o_smartpm_warning",
                        limits: ".o_smartpm_limits",
                    });
                },
            },
            {
                content: "a negative amount is refused with a clear message",
                trigger: ".o_smartpm_amount",
                run: "edit -5",
            },
            {
                content: "the refusal says why, in the currency",
                trigger: ".o_smartpm_refusal:contains('cannot be negative')",
                run() {
                    report("negative", { refusal: ".o_smartpm_refusal" });
                },
            },
            {
                content: "the confirm button stays disabled",
                trigger: ".o_smartpm_confirm:disabled",
            },
            ...tapQuickAmount(QUICK_AMOUNT),
            {
                content: "the kWh, the price and the new balance are previewed",
                trigger: ".o_smartpm_preview .o_smartpm_balance_preview",
                run() {
                    report("preview", {
                        kwh: ".o_smartpm_kwh_preview .fw-bold",
                        price: ".o_smartpm_price_info",
                        balance: ".o_smartpm_balance_preview strong",
                    });
                },
            },
            ...addCredit(),
            {
                content: "the line names the meter",
                trigger: `.orderline .o_smartpm_meter:contains('${METER}')`,
            },
            ProductScreen.totalAmountIs("10.00"),
            {
                content: "the tenant is the customer of the order",
                trigger: ".product-screen .set-partner:not(:contains('Customer'))",
                run() {
                    report("customer", { partner: ".product-screen .set-partner" });
                },
            },
            ...payCash(),
            {
                content: "the receipt carries the purchase reference from the server",
                trigger: ".pos-receipt .o_smartpm_reference:contains('Purchase: CP')",
            },
            {
                content: "the receipt shows the price per kWh and the estimated new balance",
                trigger: ".pos-receipt .o_smartpm_price + .o_smartpm_balance",
                run() {
                    report("receipt", {
                        meter: ".pos-receipt .o_smartpm_meter",
                        tenant: ".pos-receipt .o_smartpm_tenant",
                        kwh: ".pos-receipt .o_smartpm_kwh",
                        price: ".pos-receipt .o_smartpm_price",
                        balance: ".pos-receipt .o_smartpm_balance",
                        reference: ".pos-receipt .o_smartpm_reference",
                        total: ".pos-receipt .pos-receipt-amount",
                    });
                },
            },
            {
                content: "the cashier sees the credit on its way to the meter",
                trigger: `.o_smartpm_delivery_line[data-meter='${METER}']`,
            },
            ReceiptScreen.clickNextOrder(),
            ...Chrome.clickMenuOption("Close Register"),
            {
                content: "the closing shows the credit sold in the session",
                trigger: ".close-pos-popup .o_smartpm_closing_credit",
                run() {
                    report("closing", {
                        count: ".o_smartpm_closing_count",
                        amount: ".o_smartpm_closing_amount",
                        kwh: ".o_smartpm_closing_kwh",
                    });
                },
            },
            {
                content: "count the cash: what the register expects",
                trigger: ".close-pos-popup .fa-clone",
                run: "click",
            },
            {
                content: "close the register",
                trigger: ".close-pos-popup .modal-footer .btn-primary:contains('Close Register')",
                run: "click",
                expectUnloadPage: true,
            },
            {
                content: "the register is closed: it offers to open again (or the dashboard)",
                trigger: `.screen-login .open-register-btn, .o_kanban_record:contains('${SHOP}') button[name='open_ui']:contains('Open Register')`,
            },
        ].flat(),
});

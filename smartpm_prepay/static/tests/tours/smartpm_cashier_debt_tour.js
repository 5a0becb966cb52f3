/**
 * The demo cashier sells credit to a tenant with a debt and emergency credit taken
 * (tests/journeys/test_cashier_debt_journey.py sets them up): from the dashboard he opens
 * the Furniture Shop's register, sells 10.00 to meter SIM00002; the popup previews the
 * split, and the printed ticket and the receipt screen show it (services/receipt.py).
 * The ticket's lines are logged for the Python test to compare with the purchase's receipt.
 */
import * as ProductScreen from "@point_of_sale/../tests/tours/utils/product_screen_util";
import * as ReceiptScreen from "@point_of_sale/../tests/tours/utils/receipt_screen_util";
import { registry } from "@web/core/registry";
import {
    addCredit,
    openRegister,
    patient,
    payCash,
    reportLines,
    searchMeter,
    tapQuickAmount,
} from "@smartpm_prepay/../tests/tours/smartpm_cashier_steps";

const SHOP = "Furniture Shop";
const METER = "SIM00002";

registry.category("web_tour.tours").add("smartpm_cashier_debt_journey", {
    steps: () =>
        patient([
            ...openRegister(SHOP),
            ...searchMeter(METER),
            ...tapQuickAmount("10"),
            {
                content: "the popup previews the split: emergency credit to repay",
                trigger: ".o_smartpm_split_preview .o_smartpm_split_emergency_repaid_kwh",
                run() {
                    reportLines("preview", ".o_smartpm_split_preview li");
                },
            },
            ...addCredit(),
            ProductScreen.totalAmountIs("10.00"),
            ...payCash(),
            {
                content: "the receipt screen: debt repaid 4.00",
                trigger: ".o_smartpm_receipt_split .o_smartpm_split_debt_recovered:contains('4.00')",
            },
            {
                content: "the receipt screen: debt left 1.00",
                trigger: ".o_smartpm_receipt_split .o_smartpm_split_debt_balance:contains('1.00')",
            },
            {
                content: "the receipt screen: credit bought 6.00 of the 10.00 paid",
                trigger: ".o_smartpm_receipt_split .o_smartpm_split_credit_amount:contains('6.00')",
            },
            {
                content: "the printed ticket: the purchase reference from the server",
                trigger: ".pos-receipt .o_smartpm_reference:contains('Purchase: CP')",
            },
            {
                content: "the printed ticket: the emergency credit repaid and the net energy",
                trigger: ".pos-receipt .o_smartpm_split_emergency_repaid_kwh + .o_smartpm_split_net_kwh",
                run() {
                    reportLines("ticket", ".pos-receipt .o_smartpm_split_line");
                    reportLines("receipt_screen", ".o_smartpm_receipt_split .o_smartpm_split_line");
                },
            },
            ReceiptScreen.clickNextOrder(),
        ]),
});

import * as Chrome from "@point_of_sale/../tests/tours/utils/chrome_util";
import * as Dialog from "@point_of_sale/../tests/tours/utils/dialog_util";
import * as ProductScreen from "@point_of_sale/../tests/tours/utils/product_screen_util";
import * as PaymentScreen from "@point_of_sale/../tests/tours/utils/payment_screen_util";
import * as ReceiptScreen from "@point_of_sale/../tests/tours/utils/receipt_screen_util";
import { registry } from "@web/core/registry";
import { patient } from "@smartpm_prepay/../tests/tours/smartpm_cashier_steps";

// A tenant with a debt (fixed 4.00 per purchase) and 3 kWh of emergency credit taken buys
// 10.00: the receipt screen and the printed ticket show what was paid, the debt repaid,
// the debt left, the credit bought (6.00 = 12 kWh), the 3 kWh of emergency credit the
// meter keeps and the 9 kWh net (services/receipt.py).
registry.category("web_tour.tours").add("smartpm_pos_debt_split", {
    steps: () =>
        patient([
            Chrome.startPoS(),
            Dialog.confirm("Open Register"),
            ProductScreen.clickDisplayedProduct("Electricity credit"),
            {
                content: "search the tenant's meter",
                trigger: ".o_smartpm_meter_search",
                run: "edit POS-DEBT",
            },
            {
                content: "choose the meter",
                trigger: ".o_smartpm_meter_row[data-serial='POS-DEBT']",
                run: "click",
            },
            {
                content: "amount 10.00",
                trigger: ".o_smartpm_amount",
                run: "edit 10",
            },
            {
                content: "kWh preview: the debt's part first (10.00 - 4.00 at 0.50)",
                trigger: ".o_smartpm_kwh_preview:contains('12.00 kWh')",
            },
            {
                content: "add the credit",
                trigger: ".o_smartpm_amount",
                run: "press Enter",
            },
            ProductScreen.totalAmountIs("10.00"),
            ProductScreen.clickPayButton(),
            PaymentScreen.clickPaymentMethod("Cash"),
            PaymentScreen.clickValidate(),
            {
                content: "the server has taken the order (slow on a busy machine)",
                trigger: ".pos .receipt-screen .o_smartpm_delivery",
                timeout: 60000,
            },
            ReceiptScreen.isShown(),
            {
                content: "receipt screen: amount paid",
                trigger: ".o_smartpm_receipt_split .o_smartpm_split_amount:contains('10.00')",
            },
            {
                content: "receipt screen: debt repaid",
                trigger: ".o_smartpm_receipt_split .o_smartpm_split_debt_recovered:contains('4.00')",
            },
            {
                content: "receipt screen: debt left",
                trigger: ".o_smartpm_receipt_split .o_smartpm_split_debt_balance:contains('1.00')",
            },
            {
                content: "receipt screen: credit bought",
                trigger: ".o_smartpm_receipt_split .o_smartpm_split_credit_amount:contains('6.00')",
            },
            {
                content: "receipt screen: emergency credit the meter keeps (3 of the 12 kWh)",
                trigger: ".o_smartpm_receipt_split .o_smartpm_split_emergency_repaid_kwh:contains('3.00 kWh')",
            },
            {
                content: "printed ticket: debt repaid and left, credit bought",
                trigger: ".pos-receipt .o_smartpm_split_debt_recovered:contains('4.00') ~ .o_smartpm_split_debt_balance:contains('1.00') ~ .o_smartpm_split_credit_amount:contains('6.00')",
            },
            {
                content: "printed ticket: emergency credit repaid, net energy added, transfer number",
                trigger: ".pos-receipt .o_smartpm_split_emergency_repaid_kwh:contains('3.00 kWh') + .o_smartpm_split_net_kwh:contains('9.00 kWh') + .o_smartpm_split_transfer_number:contains('1')",
            },
            ReceiptScreen.clickNextOrder(),
        ]),
});

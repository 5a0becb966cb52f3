import * as Chrome from "@point_of_sale/../tests/tours/utils/chrome_util";
import * as Dialog from "@point_of_sale/../tests/tours/utils/dialog_util";
import * as ProductScreen from "@point_of_sale/../tests/tours/utils/product_screen_util";
import * as PaymentScreen from "@point_of_sale/../tests/tours/utils/payment_screen_util";
import * as ReceiptScreen from "@point_of_sale/../tests/tours/utils/receipt_screen_util";
import { registry } from "@web/core/registry";

// A tenant with a debt (fixed 4.00 per purchase) buys 10.00: the receipt screen shows
// what was paid, the debt repaid, the debt left and the credit bought (6.00 = 12 kWh).
registry.category("web_tour.tours").add("smartpm_pos_debt_split", {
    steps: () =>
        [
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
            ReceiptScreen.isShown(),
            {
                content: "receipt: debt repaid",
                trigger: ".o_smartpm_debt_split .o_smartpm_split_debt:contains('4.00')",
            },
            {
                content: "receipt: debt left",
                trigger: ".o_smartpm_debt_split .o_smartpm_split_balance:contains('1.00')",
            },
            {
                content: "receipt: credit bought and its kWh",
                trigger: ".o_smartpm_debt_split .o_smartpm_split_credit:contains('6.00')",
            },
            {
                content: "receipt: amount paid",
                trigger: ".o_smartpm_debt_split .o_smartpm_split_amount:contains('10.00')",
            },
            ReceiptScreen.clickNextOrder(),
        ].flat(),
});

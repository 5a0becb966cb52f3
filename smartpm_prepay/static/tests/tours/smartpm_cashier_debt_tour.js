/**
 * The demo cashier sells credit to a tenant with a debt (tests/journeys/
 * test_cashier_debt_journey.py adds it): from the dashboard he opens the Furniture Shop's
 * register, sells 10.00 to meter SIM00002, and the receipt screen shows the split.
 */
import * as Dialog from "@point_of_sale/../tests/tours/utils/dialog_util";
import * as PaymentScreen from "@point_of_sale/../tests/tours/utils/payment_screen_util";
import * as ProductScreen from "@point_of_sale/../tests/tours/utils/product_screen_util";
import * as ReceiptScreen from "@point_of_sale/../tests/tours/utils/receipt_screen_util";
import { registry } from "@web/core/registry";

const SHOP = "Furniture Shop";
const METER = "SIM00002";

registry.category("web_tour.tours").add("smartpm_cashier_debt_journey", {
    steps: () =>
        [
            {
                content: `the cashier opens the register of the ${SHOP} from the dashboard`,
                trigger: `.o_kanban_record:contains('${SHOP}') button[name='open_ui']:contains('Open Register')`,
                run: "click",
                expectUnloadPage: true,
            },
            {
                content: "the register asks for the opening cash",
                trigger: ".modal .opening-cash-control, .modal .modal-footer .btn-primary:contains('Open Register')",
            },
            Dialog.confirm("Open Register"),
            {
                content: "Sell credit",
                trigger: ".product-screen .o_smartpm_sell_credit",
                run: "click",
            },
            {
                content: `search the meter ${METER}`,
                trigger: ".o_smartpm_meter_search",
                run: `edit ${METER}`,
            },
            {
                content: "choose it",
                trigger: `.o_smartpm_meter_row[data-serial='${METER}']`,
                run: "click",
            },
            {
                content: "one tap on the quick amount 10",
                trigger: ".o_smartpm_quick_amount[data-amount='10']",
                run: "click",
            },
            {
                content: "add the credit",
                trigger: ".o_smartpm_confirm:enabled",
                run: "click",
            },
            ProductScreen.totalAmountIs("10.00"),
            ProductScreen.clickPayButton(),
            PaymentScreen.clickPaymentMethod("Cash"),
            PaymentScreen.clickValidate(),
            ReceiptScreen.isShown(),
            {
                content: "the receipt screen: debt repaid 4.00",
                trigger: ".o_smartpm_debt_split .o_smartpm_split_debt:contains('4.00')",
            },
            {
                content: "the receipt screen: debt left 1.00",
                trigger: ".o_smartpm_debt_split .o_smartpm_split_balance:contains('1.00')",
            },
            {
                content: "the receipt screen: credit bought 6.00 of the 10.00 paid",
                trigger: ".o_smartpm_debt_split .o_smartpm_split_credit:contains('6.00')",
            },
            ReceiptScreen.clickNextOrder(),
        ].flat(),
});

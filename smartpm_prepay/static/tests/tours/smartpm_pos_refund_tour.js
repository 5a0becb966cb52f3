import * as Chrome from "@point_of_sale/../tests/tours/utils/chrome_util";
import * as Dialog from "@point_of_sale/../tests/tours/utils/dialog_util";
import * as ProductScreen from "@point_of_sale/../tests/tours/utils/product_screen_util";
import * as PaymentScreen from "@point_of_sale/../tests/tours/utils/payment_screen_util";
import * as ReceiptScreen from "@point_of_sale/../tests/tours/utils/receipt_screen_util";
import * as TicketScreen from "@point_of_sale/../tests/tours/utils/ticket_screen_util";
import { registry } from "@web/core/registry";

/** Sell 10.00 of credit to POS-OK, pay cash, then open the paid order in the ticket screen. */
function sellThenOpenTheOrder() {
    return [
        Chrome.startPoS(),
        Dialog.confirm("Open Register"),
        ProductScreen.clickDisplayedProduct("Electricity credit"),
        {
            content: "search the meter",
            trigger: ".o_smartpm_meter_search",
            run: "edit POS-OK",
        },
        {
            content: "choose the meter",
            trigger: ".o_smartpm_meter_row[data-serial='POS-OK']",
            run: "click",
        },
        { content: "amount 10.00", trigger: ".o_smartpm_amount", run: "edit 10" },
        { content: "add the credit", trigger: ".o_smartpm_amount", run: "press Enter" },
        ProductScreen.totalAmountIs("10.00"),
        ProductScreen.clickPayButton(),
        PaymentScreen.clickPaymentMethod("Cash"),
        PaymentScreen.clickValidate(),
        ReceiptScreen.isShown(),
        {
            content: "the sale reached the server",
            trigger: ".pos-receipt .o_smartpm_reference:contains('Purchase: CP')",
        },
        ReceiptScreen.clickNextOrder(),
        Chrome.clickMenuOption("Orders"),
        TicketScreen.selectFilter("All active orders"),
        TicketScreen.selectFilter("Paid"),
        TicketScreen.selectOrder("-0001"),
    ].flat();
}

registry.category("web_tour.tours").add("smartpm_pos_refund_credit", {
    steps: () =>
        [
            sellThenOpenTheOrder(),
            TicketScreen.confirmRefund(),
            ProductScreen.clickPayButton(),
            PaymentScreen.totalIs("-10.00"),
            PaymentScreen.clickPaymentMethod("Cash"),
            PaymentScreen.remainingIs("0.00"),
            PaymentScreen.clickValidate(),
            ReceiptScreen.isShown(),
            ReceiptScreen.clickNextOrder(),
        ].flat(),
});

registry.category("web_tour.tours").add("smartpm_pos_refund_refused", {
    steps: () =>
        [
            sellThenOpenTheOrder(),
            TicketScreen.confirmRefund(),
            Dialog.is({ title: "Electricity credit" }),
            {
                content: "the cashier is told why",
                trigger: ".modal-body:contains('cannot be refunded at the register')",
            },
            Dialog.confirm(),
            {
                content: "no refund order was made: still on the ticket screen",
                trigger: ".ticket-screen",
            },
        ].flat(),
});

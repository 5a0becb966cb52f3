import * as Chrome from "@point_of_sale/../tests/tours/utils/chrome_util";
import * as Dialog from "@point_of_sale/../tests/tours/utils/dialog_util";
import * as ProductScreen from "@point_of_sale/../tests/tours/utils/product_screen_util";
import * as PaymentScreen from "@point_of_sale/../tests/tours/utils/payment_screen_util";
import * as ReceiptScreen from "@point_of_sale/../tests/tours/utils/receipt_screen_util";
import { registry } from "@web/core/registry";

function searchMeter(query) {
    return {
        content: `search meter '${query}'`,
        trigger: ".o_smartpm_meter_search",
        run: `edit ${query}`,
    };
}

registry.category("web_tour.tours").add("smartpm_pos_sell_credit", {
    steps: () =>
        [
            Chrome.startPoS(),
            Dialog.confirm("Open Register"),
            ProductScreen.clickDisplayedProduct("Electricity credit"),
            // a meter that cannot be sold to shows why and cannot be chosen
            searchMeter("POS-DRAFT"),
            {
                content: "the draft meter is listed with its reason",
                trigger: ".o_smartpm_meter_row[data-serial='POS-DRAFT'] .text-danger:contains('not in service')",
                run: "click",
            },
            {
                content: "refusal shown",
                trigger: ".o_smartpm_refusal:contains('not in service')",
            },
            // search by tenant name, then choose the meter
            searchMeter("Pos Tenant"),
            {
                content: "choose the active meter",
                trigger: ".o_smartpm_meter_row[data-serial='POS-OK']",
                run: "click",
            },
            {
                content: "amount 10.00",
                trigger: ".o_smartpm_amount",
                run: "edit 10",
            },
            {
                content: "kWh preview (10.00 / 0.50 per kWh)",
                trigger: ".o_smartpm_kwh_preview:contains('20.00 kWh')",
            },
            {
                content: "add the credit (Enter in the amount)",
                trigger: ".o_smartpm_amount",
                run: "press Enter",
            },
            ProductScreen.totalAmountIs("10.00"),
            {
                content: "the line names the meter",
                trigger: ".orderline .o_smartpm_meter:contains('POS-OK')",
            },
            // the amount cannot be changed on the line (the kWh were previewed for it)
            ProductScreen.clickNumpad("Price", "5"),
            Dialog.is({ title: "Electricity credit" }),
            Dialog.confirm(),
            ProductScreen.totalAmountIs("10.00"),
            ProductScreen.clickPayButton(),
            PaymentScreen.clickPaymentMethod("Cash"),
            PaymentScreen.clickValidate(),
            ReceiptScreen.isShown(),
            {
                content: "receipt: meter",
                trigger: ".pos-receipt .o_smartpm_meter:contains('POS-OK')",
            },
            {
                content: "receipt: tenant",
                trigger: ".pos-receipt .o_smartpm_tenant:contains('Pos Tenant')",
            },
            {
                content: "receipt: kWh",
                trigger: ".pos-receipt .o_smartpm_kwh:contains('20.00 kWh')",
            },
            {
                content: "receipt: purchase reference from the server",
                trigger: ".pos-receipt .o_smartpm_reference:contains('Purchase: CP')",
            },
            {
                content: "the cashier sees the credit on its way to the meter",
                trigger: ".o_smartpm_delivery_line[data-meter='POS-OK'][data-state='queued']",
            },
            ReceiptScreen.clickNextOrder(),
        ].flat(),
});

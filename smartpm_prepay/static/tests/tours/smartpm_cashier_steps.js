/**
 * Steps the demo cashier's tours share (tests/journeys): open a shop's register from the
 * Point of Sale dashboard, sell credit to a meter with one quick amount, pay cash, and log
 * what a screen shows for the Python test ("SMARTPM_SCREEN <name> <json>").
 */
import * as Dialog from "@point_of_sale/../tests/tours/utils/dialog_util";
import * as PaymentScreen from "@point_of_sale/../tests/tours/utils/payment_screen_util";
import * as ProductScreen from "@point_of_sale/../tests/tours/utils/product_screen_util";
import * as ReceiptScreen from "@point_of_sale/../tests/tours/utils/receipt_screen_util";

export function text(selector) {
    const el = document.querySelector(selector);
    return el ? el.textContent.replace(/\s+/g, " ").trim() : null;
}

/** Log what a screen shows, for the Python test to compare. */
export function report(name, selectors) {
    const values = Object.fromEntries(
        Object.entries(selectors).map(([key, selector]) => [key, text(selector)])
    );
    console.log(`SMARTPM_SCREEN ${name} ${JSON.stringify(values)}`);
}

/** Log every line of a list (``selector``) as [label, value] pairs split at the first ": ". */
export function reportLines(name, selector) {
    const lines = [...document.querySelectorAll(selector)].map((el) => {
        const line = el.textContent.replace(/\s+/g, " ").trim();
        const at = line.indexOf(": ");
        return { key: el.dataset.key || "", label: line.slice(0, at), value: line.slice(at + 2) };
    });
    console.log(`SMARTPM_SCREEN ${name} ${JSON.stringify({ lines })}`);
}

export function openRegister(shop) {
    return [
        {
            content: `the cashier opens the register of the ${shop} from the dashboard`,
            trigger: `.o_kanban_record:contains('${shop}') button[name='open_ui']:contains('Open Register')`,
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "the register asks for the opening cash",
            trigger: ".modal .opening-cash-control, .modal .modal-footer .btn-primary:contains('Open Register')",
        },
        Dialog.confirm("Open Register"),
    ];
}

export function searchMeter(meter) {
    return [
        {
            content: "the register is open: the product screen with its Sell credit button",
            trigger: ".product-screen .o_smartpm_sell_credit",
            run: "click",
        },
        {
            content: `search the meter ${meter}`,
            trigger: ".o_smartpm_meter_search",
            run: `edit ${meter}`,
        },
        {
            content: "choose it",
            trigger: `.o_smartpm_meter_row[data-serial='${meter}']`,
            run: "click",
        },
    ];
}

export function tapQuickAmount(amount) {
    return [
        {
            content: `one tap on the quick amount ${amount}`,
            trigger: `.o_smartpm_quick_amount[data-amount='${amount}']`,
            run: "click",
        },
    ];
}

export function addCredit() {
    return [
        {
            content: "add the credit",
            trigger: ".o_smartpm_confirm:enabled",
            run: "click",
        },
    ];
}

export function payCash() {
    return [
        ProductScreen.clickPayButton(),
        PaymentScreen.clickPaymentMethod("Cash"),
        PaymentScreen.clickValidate(),
        {
            content: "the server has taken the order (slow on a busy machine)",
            trigger: ".pos .receipt-screen .o_smartpm_delivery",
            timeout: 60000,
        },
        ReceiptScreen.isShown(),
    ].flat();
}

/**
 * The steps with a longer wait for their trigger (30 s instead of 10 s): on a loaded
 * machine the register takes longer to load and the server to take the order. Nothing is
 * timed: a step still waits only until its trigger is there.
 */
export function patient(steps, timeout = 30000) {
    return steps.flat().map((step) => ({ timeout, ...step }));
}

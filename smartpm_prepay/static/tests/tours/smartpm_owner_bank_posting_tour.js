/** @odoo-module **/
import { registry } from "@web/core/registry";

// A bank sale whose books wait, as the owner (`admin`) sees it on the demo's data
// (tests/journeys/test_owner_bank_posting_journey.py).

registry.category("web_tour.tours").add("smartpm_owner_bank_posting", {
    steps: () => [
        {
            content: "The sale's form names the journal its payment waits for",
            trigger: ".o_form_view .o_form_label:contains(Payment to post in)",
        },
        {
            content: "The bank's journal",
            trigger: ".o_form_view .o_field_widget[name=posting_journal_id]:contains(Demo Bank)",
        },
        {
            content: "No invoice yet",
            trigger: ".o_form_view .o_field_widget[name=posting_journal_id]",
            run() {
                const invoice = document.querySelector(".o_form_view .o_field_widget[name=invoice_id] a");
                if (invoice && invoice.textContent.trim()) {
                    throw new Error("the sale shows an invoice that is not posted yet");
                }
            },
        },
        {
            content: "The owner's activity: the invoice and payment not posted",
            trigger: ".o-mail-Activity:contains(not posted)",
        },
    ],
});

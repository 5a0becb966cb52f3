/** @odoo-module **/
import { registry } from "@web/core/registry";

// The owner's move-out with emergency credit in use (tests/journeys/test_moveout_journey.py),
// as `admin` on the demo's data.

registry.category("web_tour.tours").add("smartpm_owner_moveout_emergency", {
    steps: () => [
        {
            content: "The move-out waits for the meter to be cleared",
            trigger: ".o_form_view .o_statusbar_status .o_arrow_button_current:contains(Clearing)",
        },
        {
            content: "The final reading shows the emergency credit in use",
            trigger: ".o_form_view .o_field_widget[name=final_emergency_kwh]:contains(5.000)",
        },
        {
            content: "The zeroing job and its state",
            trigger: ".o_form_view .o_field_widget[name=zero_job_id] a, .o_form_view .o_field_widget[name=zero_job_id]:contains(Add credit)",
        },
        {
            content: "The zeroing job waits",
            trigger: ".o_form_view .o_field_widget[name=zero_job_state]:contains(Pending)",
        },
        {
            content: "Open the settlement",
            trigger: ".o_form_view button[name=action_view_settlement]",
            run: "click",
        },
        {
            content: "The emergency credit in use",
            trigger: ".o_form_view .o_field_widget[name=emergency_credit]:contains(5.000)",
        },
        {
            content: "No negative credit",
            trigger: ".o_form_view .o_field_widget[name=negative_credit]:contains(0.000)",
        },
        {
            content: "The shortfall",
            trigger: ".o_form_view .o_field_widget[name=shortfall]:contains(3.000)",
        },
        {
            content: "The debt it became",
            trigger: ".o_form_view .o_field_widget[name=debt_id] a, .o_form_view .o_field_widget[name=debt_id]:contains(Move-out)",
        },
        {
            content: "Its amount",
            trigger: ".o_form_view .o_field_widget[name=debt_amount]:not(:contains(0.00))",
        },
    ],
});

registry.category("web_tour.tours").add("smartpm_owner_moveout_retry", {
    steps: () => [
        {
            content: "The move-out is blocked and says why",
            trigger: ".o_form_view .alert-danger:contains(was cancelled)",
        },
        {
            content: "The zeroing job is shown cancelled",
            trigger: ".o_form_view .o_field_widget[name=zero_job_state]:contains(Cancelled)",
        },
        {
            content: "Retry",
            trigger: ".o_form_view .o_statusbar_buttons button[name=action_retry]",
            run: "click",
        },
        {
            content: "The move-out clears the meter again; the token waits for the meter",
            trigger: ".o_form_view .o_field_widget[name=zero_job_state]:contains(Pending)",
        },
    ],
});

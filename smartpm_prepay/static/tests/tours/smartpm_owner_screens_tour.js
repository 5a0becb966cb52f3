/** @odoo-module **/
import { registry } from "@web/core/registry";

// The owner's screens that no other journey opens (tests/journeys/test_owner_screens_journey.py),
// as `admin` on the demo's data.

function rowsOf(selector) {
    return [...document.querySelectorAll(`${selector} .o_data_row`)].map((row) =>
        row.textContent.replace(/\s+/g, " ").trim()
    );
}

// A time-of-use tariff: its versions on the tariff, then one version's bands, seasons and
// band hours.
registry.category("web_tour.tours").add("smartpm_owner_tou_tariff", {
    steps: () => [
        {
            content: "The tariff form lists its time-of-use versions",
            trigger: ".o_form_view .o_field_widget[name=tou_version_ids] .o_data_row .o_tag:contains(Peak)",
        },
        {
            content: "No single price or block tiers on a time-of-use tariff",
            trigger: ".o_form_view .o_field_widget[name=tou_version_ids]",
            run() {
                if (document.querySelector(".o_form_view .o_field_widget[name=tier_ids]")) {
                    throw new Error("a time-of-use tariff shows block tiers");
                }
            },
        },
        {
            content: "Open the version",
            trigger: ".o_field_widget[name=tou_version_ids] .o_data_row td.o_data_cell",
            run: "click",
        },
        {
            content: "Its bands with their prices",
            trigger: ".modal .o_field_widget[name=band_ids] .o_data_row:contains(Off-peak)",
        },
        {
            content: "Its seasons",
            trigger: ".modal .o_field_widget[name=season_ids] .o_data_row:contains(Summer)",
        },
        {
            content: "Its band hours, read as times",
            trigger: ".modal .o_field_widget[name=rule_ids] .o_data_row:contains(17:00)",
            run() {
                const rules = rowsOf(".modal .o_field_widget[name=rule_ids]");
                sessionStorage.setItem("smartpm_tou_rules", JSON.stringify(rules));
                const bands = rowsOf(".modal .o_field_widget[name=band_ids]");
                sessionStorage.setItem("smartpm_tou_bands", JSON.stringify(bands));
                if (!rules.some((r) => r.includes("Summer"))) {
                    throw new Error("no band hours name their season");
                }
            },
        },
        {
            content: "Close the version",
            trigger: ".modal .o_form_button_cancel, .modal .btn-close",
            run: "click",
        },
        {
            content: "Back on the tariff",
            trigger: ".o_form_view:not(.modal .o_form_view) .o_field_widget[name=tou_version_ids]",
        },
    ],
});

// The standing-charge list: the charges collected from the tenants' credit.
registry.category("web_tour.tours").add("smartpm_owner_standing_charges", {
    steps: () => [
        {
            content: "The list is titled",
            trigger: ".o_breadcrumb .active:contains(Standing charges)",
        },
        {
            content: "The charges collected on amina's meter",
            trigger: ".o_list_view .o_data_row:contains(SIM00001):contains(Collected)",
            run() {
                sessionStorage.setItem(
                    "smartpm_charge_rows",
                    String(rowsOf(".o_list_view").filter((r) => r.includes("SIM00001")).length)
                );
                if (document.querySelector(".o_view_sample_data")) {
                    throw new Error("the standing charges list shows sample data");
                }
            },
        },
    ],
});

// The alarm notification rules: who is told of which alarm, how.
registry.category("web_tour.tours").add("smartpm_owner_alarm_rules", {
    steps: () => [
        {
            content: "The rules are titled",
            trigger: ".o_control_panel .o_breadcrumb:contains(Alarm notifications)",
        },
        {
            content: "The demo's rule for an opened cover",
            trigger: ".o_list_view .o_data_row:contains(Cover opened)",
            run() {
                sessionStorage.setItem(
                    "smartpm_rule_rows",
                    String(document.querySelectorAll(".o_list_view .o_data_row").length)
                );
            },
        },
    ],
});

// The meter form: Synchronise clock queues a job, the notification says so, and the job is
// in the meter's jobs.
registry.category("web_tour.tours").add("smartpm_owner_sync_clock", {
    steps: () => [
        {
            content: "The meter form",
            trigger: ".o_form_view .o_field_widget[name=serial_number]:contains(SIM00001), .o_form_view .o_field_widget[name=serial_number] input",
        },
        {
            content: "Synchronise the meter's clock",
            trigger: ".o_form_view .o_form_statusbar button[name=action_sync_clock]",
            run: "click",
        },
        {
            content: "The owner is told the job is queued",
            trigger: ".o_notification:contains(Clock synchronisation queued for 1 meter)",
        },
        {
            content: "Open the meter's jobs",
            trigger: ".o_form_view button[name=action_view_jobs]",
            run: "click",
        },
        {
            content: "The queued job is there, pending",
            trigger: ".o_list_view .o_data_row:contains(Synchronise clock):contains(Pending)",
        },
    ],
});

/** @odoo-module **/
import { registry } from "@web/core/registry";

// The owner's journey (tests/journeys/test_owner_journey.py), as `admin` on the demo's data.

function count(selector) {
    return document.querySelectorAll(selector).length;
}

// The dashboard: a title, three charts drawn by Odoo's graph view, and an offline figure
// equal to what the meter list's own filters show.
registry.category("web_tour.tours").add("smartpm_owner_dashboard", {
    steps: () => [
        {
            content: "The dashboard is titled",
            trigger: ".o_breadcrumb .active:contains(Dashboard)",
        },
        {
            content: "No technical record name anywhere in the title",
            trigger: ".o_smartpm_dashboard h1:contains(Dashboard)",
            run() {
                if (document.querySelector(".o_breadcrumb").textContent.includes("smartpm.")) {
                    throw new Error("the breadcrumb shows a technical name");
                }
            },
        },
        {
            content: "Sales per day by channel: a real graph",
            trigger: ".o_smartpm_embedded_graph[data-method=action_chart_sales] .o_graph_renderer canvas",
        },
        {
            content: "Consumption: a real graph",
            trigger: ".o_smartpm_embedded_graph[data-method=action_chart_consumption] .o_graph_renderer canvas",
        },
        {
            content: "Open alarms: a real graph",
            trigger: ".o_smartpm_embedded_graph[data-method=action_chart_alarms] .o_graph_renderer canvas",
            run() {
                if (count(".o_smartpm_embedded_graph .o_view_sample_data")) {
                    throw new Error("a dashboard chart shows sample data");
                }
                const figure = document.querySelector("[name=tile_offline] [name=meters_offline]");
                sessionStorage.setItem("smartpm_offline", figure.textContent.trim());
            },
        },
        {
            content: "See the offline meters",
            trigger: "[name=tile_offline] button[name=action_view_offline]",
            run: "click",
        },
        {
            content: "The list applies its own Offline filter",
            trigger: ".o_searchview_facet:contains(Offline)",
        },
        {
            content: "... and its In service filter",
            trigger: ".o_searchview_facet:contains(In service)",
        },
        {
            content: "As many meters as the dashboard said",
            trigger: ".o_list_view .o_data_row",
            run() {
                const expected = Number(sessionStorage.getItem("smartpm_offline"));
                const rows = count(".o_list_view .o_data_row");
                if (!expected || rows !== expected) {
                    throw new Error(`dashboard says ${expected} offline, the list shows ${rows}`);
                }
                const badges = [...document.querySelectorAll(".o_data_row [name=online_state]")];
                if (badges.some((b) => !b.textContent.includes("Offline"))) {
                    throw new Error("a meter of the Offline list is not shown offline");
                }
            },
        },
    ],
});

// Top consumers opens on the last 30 days, with real data (not Odoo's sample).
registry.category("web_tour.tours").add("smartpm_owner_top_consumers", {
    steps: () => [
        {
            content: "The period is the last 30 days",
            trigger: ".o_searchview_facet:contains(Last 30 days)",
        },
        {
            content: "A real graph",
            trigger: ".o_graph_renderer canvas",
            run() {
                if (count(".o_view_sample_data")) {
                    throw new Error("Top consumers shows Odoo's sample data");
                }
            },
        },
    ],
});

// The owner creates a reading task on the demo's transformer TR-02 and starts it.
registry.category("web_tour.tours").add("smartpm_owner_reading_task_start", {
    steps: () => [
        {
            content: "New task",
            trigger: ".o_list_button_add",
            run: "click",
        },
        {
            content: "Title",
            trigger: ".o_field_widget[name=name] input",
            run: "edit Owner journey read",
        },
        {
            content: "Pick the meters of TR-02",
            trigger: ".o_field_widget[name=transformer_ids] input",
            run: "edit TR-02",
        },
        {
            trigger: ".o-autocomplete--dropdown-item:contains(TR-02)",
            run: "click",
        },
        {
            content: "The meters of TR-02 are listed",
            trigger: ".o_field_widget[name=meter_ids] .o_data_row:contains(SIM00009)",
        },
        {
            content: "OBIS page",
            trigger: ".o_notebook .nav-link:contains(OBIS)",
            run: "click",
        },
        {
            content: "Billing scheme",
            trigger: ".o_field_widget[name=scheme_id] input",
            run: "edit Billing",
        },
        {
            trigger: ".o-autocomplete--dropdown-item:contains(Billing)",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name=object_ids] .o_data_row:contains(Relay output state)",
        },
        {
            content: "Start reading",
            trigger: ".o_form_view button[name=action_start]",
            run: "click",
        },
        {
            content: "Running, and the form says it refreshes by itself",
            trigger: ".o_smartpm_live_reload",
        },
        {
            trigger: ".o_statusbar_status .o_arrow_button_current:contains(Running)",
        },
    ],
});

// Run 1 answered (the test played the bridge): values as people read them.
registry.category("web_tour.tours").add("smartpm_owner_reading_task_results", {
    steps: () => [
        {
            content: "Results page",
            trigger: ".o_notebook .nav-link:contains(Monitoring results)",
            run: "click",
        },
        {
            content: "The relay state in words",
            trigger: ".o_field_widget[name=current_result_ids] .o_data_row:contains(Relay output state):contains(Connected)",
        },
        {
            content: "Energy with its unit, the clock as a local date-time",
            trigger: ".o_field_widget[name=current_result_ids] .o_data_row:contains(Active energy import (+A)):contains(Wh)",
            run() {
                const rows = [...document.querySelectorAll("[name=current_result_ids] .o_data_row")];
                const text = rows.map((r) => r.textContent).join("\n");
                for (const raw of ["T13:", "Z", "true", "false"]) {
                    if (rows.some((r) => r.querySelector("[name=value_display]").textContent.includes(raw))) {
                        throw new Error(`a raw value (${raw}) is shown:\n${text}`);
                    }
                }
                const clock = rows.find((r) => r.textContent.includes("Clock"));
                if (!clock || !/2026/.test(clock.querySelector("[name=value_display]").textContent)) {
                    throw new Error("the clock is not shown as a date-time");
                }
            },
        },
        {
            content: "Read again",
            trigger: ".o_form_view button[name=action_read_again]",
            run: "click",
        },
        {
            trigger: ".o_smartpm_live_reload",
        },
    ],
});

// Run 2 answered (one meter failed): the counts are those of run 2 only.
registry.category("web_tour.tours").add("smartpm_owner_reading_task_run2", {
    steps: () => [
        {
            content: "The task is done",
            trigger: ".o_statusbar_status .o_arrow_button_current:contains(Done)",
        },
        {
            content: "How many meters the task reads",
            trigger: ".o_notebook .nav-link:contains(Electricity meter)",
            run(helpers) {
                helpers.click();
            },
        },
        {
            trigger: ".o_field_widget[name=meter_count]",
            run() {
                const meters = document.querySelector(".o_field_widget[name=meter_count]");
                sessionStorage.setItem("smartpm_meters", meters.textContent.trim());
            },
        },
        {
            content: "Results page",
            trigger: ".o_notebook .nav-link:contains(Monitoring results)",
            run: "click",
        },
        {
            content: "Run 2 is shown",
            trigger: ".o_field_widget[name=run]:contains(2)",
            run() {
                const value = (name) =>
                    Number(document.querySelector(`.o_notebook .o_field_widget[name=${name}]`).textContent.trim());
                const meters = Number(sessionStorage.getItem("smartpm_meters"));
                const [queried, done, failed] = ["job_count", "job_done_count", "job_failed_count"].map(value);
                if (queried !== meters || done + failed !== meters || failed !== 1) {
                    throw new Error(
                        `run 2 of ${meters} meters shows ${queried} queried, ${done} answered, ${failed} failed`
                    );
                }
                const rows = document.querySelectorAll("[name=current_result_ids] .o_data_row");
                const failures = [...rows].filter((r) => r.textContent.includes("Meter did not answer"));
                if (failures.length !== 1) {
                    throw new Error(`${failures.length} failure rows, expected the one of run 2`);
                }
            },
        },
    ],
});

/** Odoo's own graph view, embedded in a form (the owner's dashboard), as the board module
 * embeds its actions. The action comes from a method of the form's model, so the domain
 * (local days, company) is the one the server counts with. */
import { Component, onWillStart } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { View } from "@web/views/view";
import { standardWidgetProps } from "@web/views/widgets/standard_widget_props";

export class EmbeddedGraph extends Component {
    static template = "smartpm_prepay.EmbeddedGraph";
    static components = { View };
    static props = {
        ...standardWidgetProps,
        method: String,
        title: { type: String, optional: true },
    };

    setup() {
        this.orm = useService("orm");
        this.actionService = useService("action");
        onWillStart(async () => {
            const record = this.props.record;
            const ids = record.resId ? [record.resId] : [];
            this.action = await this.orm.call(record.resModel, this.props.method, [ids], {
                context: record.context,
            });
            const views = this.action.views || [];
            const graph = views.find((v) => v[1] === "graph");
            const search = this.action.search_view_id;
            const context = { ...(this.action.context || {}) };
            const groupBy = context.group_by;
            this.viewProps = {
                resModel: this.action.res_model,
                type: "graph",
                display: { controlPanel: false },
                domain: this.action.domain || [],
                context,
                views: [
                    [(graph && graph[0]) || false, "graph"],
                    [(search && search[0]) || false, "search"],
                ],
            };
            if (graph && graph[0]) {
                this.viewProps.viewId = graph[0];
            }
            if (groupBy) {
                this.viewProps.groupBy = typeof groupBy === "string" ? [groupBy] : groupBy;
            }
        });
    }

    openFull() {
        this.actionService.doAction(this.action);
    }
}

registry.category("view_widgets").add("smartpm_embedded_graph", {
    component: EmbeddedGraph,
    extractProps: ({ attrs }) => ({ method: attrs.method, title: attrs.title }),
});

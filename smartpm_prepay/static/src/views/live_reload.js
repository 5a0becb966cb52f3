/** While a reading task runs, its form reloads itself every few seconds so the results and
 * counts appear as the meters answer; the widget is only present (invisible= in the view)
 * while the task runs, and never reloads over unsaved edits. */
import { Component, onMounted, onWillUnmount } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { standardWidgetProps } from "@web/views/widgets/standard_widget_props";

export const LIVE_RELOAD_MS = 3000;

export class LiveReload extends Component {
    static template = "smartpm_prepay.LiveReload";
    static props = { ...standardWidgetProps };

    setup() {
        this.timer = null;
        onMounted(() => {
            this.timer = setInterval(() => this.reload(), LIVE_RELOAD_MS);
        });
        onWillUnmount(() => clearInterval(this.timer));
    }

    async reload() {
        const record = this.props.record;
        if (this.busy || !record.resId || record.dirty) {
            return;
        }
        this.busy = true;
        try {
            await record.load();
        } finally {
            this.busy = false;
        }
    }
}

registry.category("view_widgets").add("smartpm_live_reload", { component: LiveReload });

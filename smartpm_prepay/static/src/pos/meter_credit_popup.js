import { Component, useState, onWillUnmount } from "@odoo/owl";
import { Dialog } from "@web/core/dialog/dialog";
import { _t } from "@web/core/l10n/translation";
import { debounce } from "@web/core/utils/timing";
import { useAutofocus } from "@web/core/utils/hooks";
import { usePos } from "@point_of_sale/app/store/pos_hook";
import { ConnectionLostError } from "@web/core/network/rpc";

/**
 * Asks for the meter (searched on the server: 100,000 meters are not loaded into the
 * POS) and the amount, previews the kWh and refuses a meter that cannot be sold to.
 * The server checks everything again when the paid order arrives.
 */
export class MeterCreditPopup extends Component {
    static template = "smartpm_prepay.MeterCreditPopup";
    static components = { Dialog };
    static props = ["getPayload", "close", "product"];

    setup() {
        this.pos = usePos();
        this.state = useState({
            query: "",
            results: [],
            searched: false,
            meter: null,
            amount: "",
            quote: null,
            error: "",
            busy: false,
        });
        useAutofocus({ refName: "search" });
        useAutofocus({ refName: "amount" });
        this.debouncedSearch = debounce(() => this.search(), 250);
        this.debouncedQuote = debounce(() => this.fetchQuote(), 250);
        onWillUnmount(() => {
            this.debouncedSearch.cancel();
            this.debouncedQuote.cancel();
        });
    }

    get currency() {
        return this.pos.currency;
    }

    _rpcError(error) {
        if (error instanceof ConnectionLostError) {
            return _t("No connection to the server: selling credit needs it to check the meter.");
        }
        return error?.data?.message || error?.message || String(error);
    }

    onQueryInput(ev) {
        this.state.query = ev.target.value;
        this.debouncedSearch();
    }

    async search() {
        const query = this.state.query.trim();
        if (query.length < 2) {
            this.state.results = [];
            this.state.searched = false;
            return;
        }
        try {
            this.state.results = await this.pos.data.call("smartpm.meter", "pos_search_meters", [
                query,
            ]);
            this.state.error = "";
        } catch (error) {
            this.state.error = this._rpcError(error);
            this.state.results = [];
        }
        this.state.searched = true;
    }

    onQueryKeydown(ev) {
        // Enter takes the only match (e.g. a meter number typed in full or scanned)
        if (ev.key === "Enter" && this.state.results.length === 1) {
            this.selectMeter(this.state.results[0]);
        }
    }

    async onAmountKeydown(ev) {
        if (ev.key === "Enter") {
            this.state.amount = ev.target.value;
            await this.fetchQuote();
            await this.confirm();
        }
    }

    selectMeter(meter) {
        if (meter.refusal) {
            this.state.error = meter.refusal;
            return;
        }
        this.state.error = "";
        this.state.meter = meter;
        this.state.quote = null;
        if (this.state.amount) {
            this.fetchQuote();
        }
    }

    changeMeter() {
        this.state.meter = null;
        this.state.quote = null;
        this.state.error = "";
    }

    get amount() {
        const value = parseFloat(String(this.state.amount).replace(",", "."));
        return isNaN(value) ? 0 : value;
    }

    onAmountInput(ev) {
        this.state.amount = ev.target.value;
        this.state.quote = null;
        this.debouncedQuote();
    }

    async fetchQuote() {
        if (!this.state.meter || this.amount <= 0) {
            this.state.quote = null;
            return;
        }
        const amount = this.amount;
        try {
            const quote = await this.pos.data.call("smartpm.meter", "pos_quote_credit", [
                this.state.meter.id,
                amount,
                this.pos.config.id,
            ]);
            if (amount !== this.amount) {
                return; // the cashier typed on meanwhile
            }
            this.state.quote = quote;
            this.state.error = quote.refusal || "";
        } catch (error) {
            this.state.quote = null;
            this.state.error = this._rpcError(error);
        }
    }

    get canConfirm() {
        const quote = this.state.quote;
        return Boolean(this.state.meter && quote && !quote.refusal && quote.kwh > 0);
    }

    formatKwh(value) {
        return `${(value || 0).toFixed(2)} kWh`;
    }

    async confirm() {
        if (!this.canConfirm) {
            return;
        }
        this.props.getPayload({
            meter_id: this.state.meter.id,
            amount: this.amount,
            kwh: this.state.quote.kwh,
            tax_ids: this.state.quote.tax_ids || [],
        });
        this.props.close();
    }
}

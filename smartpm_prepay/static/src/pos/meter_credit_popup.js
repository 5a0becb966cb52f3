import { Component, useState, onWillUnmount } from "@odoo/owl";
import { Dialog } from "@web/core/dialog/dialog";
import { _t } from "@web/core/l10n/translation";
import { debounce } from "@web/core/utils/timing";
import { useAutofocus } from "@web/core/utils/hooks";
import { deserializeDateTime, formatDateTime } from "@web/core/l10n/dates";
import { usePos } from "@point_of_sale/app/store/pos_hook";
import { ConnectionLostError } from "@web/core/network/rpc";

/**
 * Asks for the meter (searched on the server by meter number, tenant name, tenant number
 * or phone: 100,000 meters are not loaded into the POS) and the amount (typed or one of
 * the company's quick amounts), previews the kWh, the price and the new balance, warns of
 * a meter out of contact and refuses one that cannot be sold to. The server checks
 * everything again when the paid order arrives.
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
            more: false,
            limit: 0,
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

    get quickAmounts() {
        return this.pos.session._smartpm_quick_amounts || [];
    }

    formatAmount(amount) {
        return this.env.utils.formatCurrency(amount || 0);
    }

    formatKwh(value) {
        return `${(value || 0).toFixed(2)} kWh`;
    }

    formatDate(value) {
        return value ? formatDateTime(deserializeDateTime(value)) : "";
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
            this.state.more = false;
            this.state.searched = false;
            return;
        }
        try {
            const found = await this.pos.data.call("smartpm.meter", "pos_search_meters", [
                query,
            ]);
            if (query !== this.state.query.trim()) {
                return; // the cashier typed on meanwhile
            }
            this.state.results = found.meters;
            this.state.more = found.more;
            this.state.limit = found.limit;
            this.state.error = "";
        } catch (error) {
            this.state.error = this._rpcError(error);
            this.state.results = [];
            this.state.more = false;
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
        if (this.state.amount !== "") {
            this.fetchQuote();
        }
    }

    changeMeter() {
        this.state.meter = null;
        this.state.quote = null;
        this.state.error = "";
    }

    /** The amount typed, a number, or null when it is empty or not a number. */
    get amount() {
        const text = String(this.state.amount).trim().replace(",", ".");
        if (text === "") {
            return null;
        }
        const value = Number(text);
        return Number.isFinite(value) ? value : NaN;
    }

    onAmountInput(ev) {
        this.state.amount = ev.target.value;
        this.state.quote = null;
        this.debouncedQuote();
    }

    async chooseQuickAmount(amount) {
        this.state.amount = String(amount);
        this.state.quote = null;
        this.debouncedQuote.cancel();
        await this.fetchQuote();
    }

    async fetchQuote() {
        const amount = this.amount;
        if (!this.state.meter || amount === null) {
            this.state.quote = null;
            this.state.error = "";
            return;
        }
        if (Number.isNaN(amount)) {
            this.state.quote = null;
            this.state.error = _t("The amount must be a number, for example 10 or 12.50.");
            return;
        }
        // negative, zero and out-of-range amounts: the server says why, in the currency
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

    get warning() {
        return this.state.quote?.warning || this.state.meter?.warning || "";
    }

    get canConfirm() {
        const quote = this.state.quote;
        return Boolean(
            this.state.meter &&
                quote &&
                !quote.refusal &&
                (quote.kwh > 0 || quote.credit_money > 0) &&
                this.amount > 0
        );
    }

    async confirm() {
        if (!this.canConfirm) {
            return;
        }
        const quote = this.state.quote;
        this.props.getPayload({
            meter_id: this.state.meter.id,
            tenant_id: this.state.meter.tenant_id,
            amount: this.amount,
            kwh: quote.kwh,
            tax_ids: quote.tax_ids || [],
            price_info: quote.bands_info || quote.price_info || "",
            estimated_balance_kwh: quote.estimated_balance_kwh,
            receipt_lines: quote.receipt_lines || [],
        });
        this.props.close();
    }
}

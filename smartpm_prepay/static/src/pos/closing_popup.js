import { patch } from "@web/core/utils/patch";
import { ClosePosPopup } from "@point_of_sale/app/navbar/closing_popup/closing_popup";

// get_closing_control_data adds the credit sold in the session (count, amount, kWh)
patch(ClosePosPopup, {
    props: [...ClosePosPopup.props, "smartpm_credit?"],
});

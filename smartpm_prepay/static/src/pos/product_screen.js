import { patch } from "@web/core/utils/patch";
import { ProductScreen } from "@point_of_sale/app/screens/product_screen/product_screen";

patch(ProductScreen.prototype, {
    get products() {
        // credit is sold in every register, whatever the categories it is limited to
        const products = super.products;
        const credit = this.pos.smartpmCreditProduct;
        if (credit && !products.includes(credit)) {
            return [...products, credit];
        }
        return products;
    },
});

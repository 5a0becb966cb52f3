"""SmartPM Prepay meter bridge: executes Odoo's meter jobs on DLMS/COSEM meters."""

__version__ = "0.1.0"

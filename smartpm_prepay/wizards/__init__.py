from . import sell_credit_wizard
from . import bank_reconciliation
from . import dashboard
from . import tenant_statement_wizard
from . import move_out_wizard
from . import meter_replacement_wizard
from . import daily_vending_wizard

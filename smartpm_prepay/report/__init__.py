from . import tenant_statement_report
from . import daily_vending_report

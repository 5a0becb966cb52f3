from . import tenant_statement_report

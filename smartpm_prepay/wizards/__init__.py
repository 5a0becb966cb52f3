from . import sell_credit_wizard

from . import test_tenant
from . import test_meter
from . import test_access
from . import test_job
from . import test_vending
from . import test_bank_soap
from . import test_bank_xmlrpc
from . import test_bank_reconciliation

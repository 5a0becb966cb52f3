from . import test_tenant
from . import test_meter
from . import test_access
from . import test_job
from . import test_indexes
from . import test_vending
from . import test_vending_accounting
from . import test_arrears

# Journeys of the demo's own users on the demo's own data. They run on a database installed
# *with* demo data (``make test`` creates it), never on the test database of the other tests.
from . import test_demo_menus
from . import test_tenant_journey
from . import test_cashier_journey
from . import test_owner_journey
from . import test_demo_tokens
from . import test_demo_key_views
from . import test_cashier_debt_journey
from . import test_moveout_journey
from . import test_push_demo_journey
from . import test_tenant_screens_journey
from . import test_owner_screens_journey
from . import test_tou_tenant_journey
from . import test_owner_bank_posting_journey

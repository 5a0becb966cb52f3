from . import soap
from . import portal
from . import statement_portal
from . import emergency_portal
from . import notify_portal
from . import receipt_portal

from . import soap
from . import portal
from . import statement_portal

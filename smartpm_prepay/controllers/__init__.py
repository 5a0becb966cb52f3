from . import soap
from . import portal

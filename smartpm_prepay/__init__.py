from . import python_compat
from . import models
from . import wizards
from . import report
from . import controllers

python_compat.install()  # before Odoo serves a request (gh-106905)

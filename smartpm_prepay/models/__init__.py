from . import grid
from . import tariff
from . import meter
from . import res_partner
from . import job
from . import reading
from . import alarm
from . import meter_claim

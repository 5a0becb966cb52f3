# SPDX-License-Identifier: GPL-2.0-or-later
"""meter_sim: a fleet of simulated prepaid meters speaking DLMS/COSEM (gurux-dlms server).

GPL-2.0-or-later because it imports gurux-dlms (GPLv2); see LICENSE. Nothing in the addon
or the bridge may import it.
"""

from .fleet import Fleet, default_configs, load_config
from .model import MeterConfig, MeterModel, SimClock

__all__ = ["Fleet", "MeterConfig", "MeterModel", "SimClock", "default_configs", "load_config"]

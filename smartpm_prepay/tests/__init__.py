from . import test_tenant
from . import test_meter
from . import test_access
from . import test_job
from . import test_reading_task
from . import test_consumption
from . import test_alarm_workflow
from . import test_statistics

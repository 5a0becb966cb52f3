from . import job_queue

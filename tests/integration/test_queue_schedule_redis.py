"""
test_queue_schedule_redis - test_queue_schedule's cases with the jobs in
Redis (a redis group in the app files, a real redis-server of the
test's own): schedules on two processes and on a cluster of workers = 2,
rate limits on one process and shared by two, jobs added in a
transaction of the app's SQLite database (through the outbox), metrics.
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_queue_schedule  # noqa: E402

test_queue_schedule.run("redis")

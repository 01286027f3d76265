"""
test_queue_redis - test_queue's cases with the jobs in Redis (a redis
group in the app files, a real redis-server of the test's own): the same
assertions as with SQLite, the stored jobs read from Redis
(pxljobs.RedisStore).
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_queue  # noqa: E402

test_queue.run("redis")

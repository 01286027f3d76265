"""
test_queue_pool_redis - test_queue_pool's cases with the jobs in Redis
(a redis group in the app file, a real redis-server of the test's own).
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_queue_pool  # noqa: E402

test_queue_pool.run("redis")

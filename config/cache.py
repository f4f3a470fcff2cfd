"""The cache: Redis when it answers, this process's memory while it does not."""

import logging
import time

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


def _falls_back(name):
    def method(self, *args, **kwargs):
        if time.monotonic() >= self._redis_down_until:
            try:
                result = getattr(RedisCache, name)(self, *args, **kwargs)
            except RedisError as exc:
                self._redis_lost(exc)
            else:
                self._redis_answers()
                return result
        return getattr(self._fallback, name)(*args, **kwargs)

    method.__name__ = name
    return method


class ResilientRedisCache(RedisCache):
    """Django's Redis cache, which falls back to a per-process memory cache while Redis is
    unreachable, instead of failing every request that touches the cache.

    Why falling back is the safe choice: nothing in the cache must survive (sessions live in
    the database), but sign-in's rate limits and the one-time use of TOTP codes do live
    there. Failing open (treating every read as a miss) would switch those protections off
    for as long as Redis is down; failing with an error made signing in impossible. With the
    fallback they keep working, counted per process: the limits on failed sign-ins per
    account and per address hold in each web process, and a code used once is refused again
    by that process.

    After a failure Redis is left alone for ``retry_after`` seconds, so an outage costs one
    short connection attempt per process per interval rather than one per cache call.
    """

    retry_after = 5.0
    # Redis answers in a millisecond; a second without an answer is an outage.
    socket_timeouts = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}

    def __init__(self, server, params):
        options = {**self.socket_timeouts, **params.get("OPTIONS", {})}
        super().__init__(server, {**params, "OPTIONS": options})
        local = {key: value for key, value in params.items() if key != "OPTIONS"}
        self._fallback = LocMemCache(f"redis-fallback-{id(self)}", local)
        self._redis_down_until = 0.0
        self._redis_down = False

    def _redis_lost(self, exc):
        self._redis_down_until = time.monotonic() + self.retry_after
        if not self._redis_down:
            self._redis_down = True
            logger.warning(
                "Redis cache unreachable (%s); using this process's memory until it answers. "
                "Rate limits now count per process.",
                exc,
            )

    def _redis_answers(self):
        if self._redis_down:
            self._redis_down = False
            logger.warning("Redis cache answers again.")

    add = _falls_back("add")
    get = _falls_back("get")
    set = _falls_back("set")
    touch = _falls_back("touch")
    delete = _falls_back("delete")
    get_many = _falls_back("get_many")
    has_key = _falls_back("has_key")
    incr = _falls_back("incr")
    set_many = _falls_back("set_many")
    delete_many = _falls_back("delete_many")
    clear = _falls_back("clear")

"""A pytest plugin for tests/foundation/test_ci.py: lists the collected tests that need
PostgreSQL, i.e. whose function or one of whose fixtures calls one of ``NEEDS_POSTGRES``."""

import inspect

NEEDS_POSTGRES = ("require_postgres(", "start_celery_worker(", "WorkerProcess(")
PREFIX = "NEEDS POSTGRESQL: "


def _source(function):
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def needs_postgres(item):
    functions = [getattr(item, "obj", None)]
    fixtures = getattr(item, "_fixtureinfo", None)
    if fixtures is not None:
        functions += [d.func for defs in fixtures.name2fixturedefs.values() for d in defs]
    return any(call in _source(f) for f in functions if f is not None for call in NEEDS_POSTGRES)


def pytest_collection_finish(session):
    for item in session.items:
        if needs_postgres(item):
            print(PREFIX + item.nodeid)

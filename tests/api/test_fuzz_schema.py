"""schemathesis over the whole OpenAPI the product serves at /api/schema/.

Every operation is driven with generated requests, valid ones (positive: on the ids of a
seeded organisation as well as on generated ids) and invalid ones (negative: wrong types,
missing fields, values outside the schema), as an application with every permission and as
people with personal tokens. Each response must be no server error, have a status code,
content type, headers and body the schema documents, and an invalid request must be
refused with a 4xx. At least ``TOTAL_CASES`` cases run in all; generation is derandomized,
so a failure found in CI is found again locally with the same command.
"""

import math
import multiprocessing
import os
import re
import time
from collections import Counter, defaultdict

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.db import connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.permissions import APPLICATION_PERMISSIONS, DELEGATED_PERMISSIONS
from tests.api.conftest import issue_app_token, issue_user_token, make_app
from tests.api.world import build_world

# At least this many cases in all; API_FUZZ_CASES asks for another number (a quick local run).
TOTAL_CASES = int(os.environ.get("API_FUZZ_CASES", "10000"))
# Processes generating and sending cases at once (API_FUZZ_WORKERS; default: one per core).
WORKERS = int(os.environ.get("API_FUZZ_WORKERS", min(os.cpu_count() or 1, 4)))
POSITIVE = GenerationMode.POSITIVE
SCHEMA_URL = "/api/schema/?format=json"

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
NEGATIVE_CHECKS = [*CHECKS, negative_data_rejection]


def _variables(path):
    return re.findall(r"{([^}]+)}", path)


class KnownIds:
    """Ids of seeded rows for each path parameter, found through the API itself: the ids
    in the list one segment up (``/catalogs/{id}`` → the ids ``GET /catalogs`` lists)."""

    def __init__(self, client, tokens):
        self.client = client
        self.tokens = tokens
        self._lists = {}

    def _ids(self, url):
        if url not in self._lists:
            ids = []
            for token in self.tokens:
                response = self.client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
                if response.status_code == 200 and "value" in response.json():
                    ids += [row["id"] for row in response.json()["value"] if "id" in row]
            self._lists[url] = list(dict.fromkeys(ids))[:4]
        return self._lists[url]

    def for_path(self, path):
        """Some complete ``{name: id}`` choices for ``path``'s parameters (maybe none)."""
        choices = [{}]
        for name in _variables(path):
            head = path.split("{" + name + "}")[0]
            if not head.endswith("/"):
                return []  # a function's argument, e.g. filterByCurrentUser(on='{on}')
            extended = []
            for choice in choices:
                url = head.rstrip("/")
                for key, value in choice.items():
                    url = url.replace("{" + key + "}", value)
                extended += [{**choice, name: value} for value in self._ids(url)]
            choices = extended[:6]
            if not choices:
                return []
        return choices


@pytest.fixture
def tokens(transactional_db):
    world = build_world()
    application, _, _ = make_app(APPLICATION_PERMISSIONS, display_name="Fuzzer")
    people = [world.requester, world.approver, world.owner, world.manager]
    return [issue_app_token(application)] + [
        issue_user_token(person, DELEGATED_PERMISSIONS) for person in people
    ]


@pytest.mark.postgres_only
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(tokens, client, settings):
    settings.DEBUG_PROPAGATE_EXCEPTIONS = False
    app = get_wsgi_application()
    schema = schemathesis.openapi.from_wsgi(SCHEMA_URL, app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 5, "the schema lists almost no operations"
    known = KnownIds(client, tokens[:2])
    per_mode = math.ceil(TOTAL_CASES * 1.03 / (2 * len(operations)))

    jobs = [
        (operation, mode, known.for_path(operation.path) if mode is POSITIVE else [])
        for operation in operations
        for mode in (POSITIVE, GenerationMode.NEGATIVE)
    ]
    started = time.monotonic()
    counts, failures = _run_jobs(jobs, tokens, per_mode)
    elapsed = time.monotonic() - started
    total = sum(counts.values())
    summary = (
        f"schemathesis: {total} cases over {len(operations)} operations in {elapsed:.0f} s; "
        f"checks: {', '.join(c.__name__ for c in NEGATIVE_CHECKS)}; "
        f"{len(failures)} distinct failures"
    )
    print(summary)
    if failures:
        report = "\n\n".join(
            f"### {label} [{mode}] {title}\n" + "\n---\n".join(examples)
            for (label, mode, title), examples in sorted(failures.items())
        )
        pytest.fail(f"{summary}\n\n{report}", pytrace=False)
    assert total >= TOTAL_CASES, summary


_SHARED = {}


def _run_jobs(jobs, tokens, examples):
    """Runs the jobs in WORKERS processes forked from this one (each with its own database
    connection to the same committed test data); (cases per operation, failures)."""
    _SHARED.update(jobs=jobs, tokens=tokens, examples=examples)
    if WORKERS == 1:
        results = [_run_share(0, 1)]
    else:
        connections.close_all()  # each child opens its own
        with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
            results = pool.starmap(_run_share, [(i, WORKERS) for i in range(WORKERS)])
    counts, failures = Counter(), defaultdict(list)
    for share_counts, share_failures in results:
        counts.update(share_counts)
        for key, examples_ in share_failures.items():
            failures[key] += examples_
    return counts, failures


def _run_share(index, workers):
    counts, failures = Counter(), defaultdict(list)
    for operation, mode, seeded in _SHARED["jobs"][index::workers]:
        strategy = operation.as_strategy(generation_mode=mode)
        if seeded:
            strategy = st.one_of(
                strategy,
                *[operation.as_strategy(generation_mode=mode, path_parameters=p) for p in seeded],
            )
        _fuzz(operation, mode, strategy, _SHARED["tokens"], _SHARED["examples"], counts, failures)
    connections.close_all()
    return dict(counts), dict(failures)


def test_a_request_the_server_cannot_read_answers_graphs_json_error(client):
    """A NUL byte (which PostgreSQL refuses in text) in an API URL's query is a 400 in
    Graph's shape, not the portal's HTML page."""
    response = client.get(
        "/v1.0/identityGovernance/entitlementManagement/catalogs", {"$filter": "a\x00b"}
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "BadRequest"


def _fuzz(operation, mode, strategy, tokens, examples, counts, failures):
    """Runs ``examples`` generated cases of ``operation``; failures are collected, not
    raised, so one failing operation does not hide the others."""
    label = f"{operation.method.upper()} {operation.path}"
    checks = CHECKS if mode is GenerationMode.POSITIVE else NEGATIVE_CHECKS

    @given(case=strategy, token=st.sampled_from(tokens))
    @hypothesis_settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    def run(case, token):
        counts[label] += 1
        try:
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=checks)
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup
            key = (label, mode.value, _title(exc))
            if len(failures[key]) < 2:
                failures[key].append(str(exc)[:1500])

    run()


def _title(exc):
    failures = getattr(exc, "exceptions", None)
    if failures:
        return "; ".join(sorted({getattr(f, "title", type(f).__name__) for f in failures}))
    return type(exc).__name__ + ": " + str(exc).splitlines()[0][:120]

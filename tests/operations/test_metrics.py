"""/metrics: Prometheus' text for a bearer of METRICS_TOKEN, read from the rows when scraped."""

from datetime import timedelta

import pytest
import redis
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from directory.models import GroupMembership
from entitlements.models import (
    AssignmentResourceRole,
    Channel,
    ConnectedSystem,
    GrantState,
)
from entitlements.services.requests import request_submit
from notifications.models import Notification
from tests.conftest import use_broker
from tests.factories import (
    AccessPackageFactory,
    GroupResourceFactory,
    PolicyFactory,
    UserFactory,
    grant_role,
)
from tests.services import redis_url

TOKEN = "scrape-token-for-the-tests"


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def scrape(client, token):
    response = client.get("/metrics", **token)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.mark.django_db
def test_metrics_are_not_served_while_no_token_is_set(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_metrics_refuse_a_caller_without_the_token(client, token, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get("/metrics", **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"celery_queue_length" not in response.content


@pytest.fixture
def world(db, django_capture_on_commit_callbacks):
    resource = GroupResourceFactory()
    package = AccessPackageFactory(catalog=resource.catalog)
    grant_role(package, resource.roles.get(origin_id="Member"))
    PolicyFactory(access_package=package)
    fast, slow, leaving = UserFactory(), UserFactory(), UserFactory()
    now = timezone.now()
    for user in (fast, slow, leaving):
        with django_capture_on_commit_callbacks(execute=True):  # delivered by the eager task
            request_submit(actor=user, target=user, access_package=package, channel=Channel.PORTAL)
    assert GroupMembership.objects.filter(group=resource.group).count() == 3
    grants = AssignmentResourceRole.objects
    # slow's grant was delivered 100 s after its approval; leaving's removal waits 120 s.
    slow_grant = grants.get(target=slow)
    type(slow_grant.assignment).objects.filter(pk=slow_grant.assignment_id).update(
        created=slow_grant.delivered_datetime - timedelta(seconds=100)
    )
    grants.filter(target=leaving).update(
        state=GrantState.PENDING_REMOVAL, modified=now - timedelta(seconds=120)
    )
    Notification.objects.filter(state=Notification.State.SENT).update(
        state=Notification.State.PENDING
    )
    Notification.objects.update(created=now - timedelta(seconds=60))
    ConnectedSystem.objects.create(kind="ldap", name="Corp LDAP", consecutive_failures=6)
    return package


def test_metrics_read_waiting_work_delivery_latency_and_system_health(client, token, world):
    samples = scrape(client, token)
    removal = samples[("entitlements_oldest_pending_seconds", (("kind", "removal"),))]
    assert 120 <= removal < 180
    assert samples[("entitlements_oldest_pending_seconds", (("kind", "grant"),))] == 0
    email = samples[("entitlements_oldest_pending_seconds", (("kind", "notification"),))]
    assert 60 <= email < 120

    def bucket(le):
        return samples[("entitlements_delivery_latency_seconds_bucket", (("le", le),))]

    assert bucket("60.0") == 1  # fast; slow took 100 s; leaving is no longer delivered
    assert bucket("120.0") == 2
    assert bucket("+Inf") == 2
    assert 100 <= samples[("entitlements_delivery_latency_seconds_gsum", ())] < 110

    ldap = (("kind", "ldap"), ("system", "Corp LDAP"))
    assert samples[("entitlements_connected_system_consecutive_failures", ldap)] == 6
    assert samples[("entitlements_connected_system_unhealthy", ldap)] == 1
    builtin = [
        k
        for k in samples
        if k[0] == "entitlements_connected_system_unhealthy"
        and k != ("entitlements_connected_system_unhealthy", ldap)
    ]
    assert [samples[k] for k in builtin] == [0]
    assert samples[("entitlements_reviews_in_progress", ())] == 0


def test_the_scrape_costs_the_same_queries_whatever_the_number_of_rows(
    client, token, world, django_assert_max_num_queries
):
    with django_assert_max_num_queries(6):
        scrape(client, token)
    for n in range(10):
        ConnectedSystem.objects.create(kind="scim", name=f"App {n}")
    UserFactory.create_batch(5)
    with django_assert_max_num_queries(6):
        scrape(client, token)


@pytest.mark.django_db
def test_request_latency_is_observed_under_the_view_name(client, token):
    client.get("/healthz")
    samples = scrape(client, token)
    labels = (("method", "GET"), ("status", "200"), ("view", "healthz"))
    assert samples[("http_request_duration_seconds_count", labels)] >= 1


@pytest.mark.django_db
def test_queue_lengths_come_from_the_redis_broker(client, token):
    url = redis_url()
    broker = redis.Redis.from_url(url)
    broker.flushdb()
    broker.lpush("delivery", "a", "b", "c")
    broker.lpush("notifications\x06\x163", "d")  # kombu's list for priority 3
    old = use_broker(url, eager=True)
    try:
        samples = scrape(client, token)
    finally:
        use_broker(*old)
        broker.flushdb()
    assert samples[("celery_queue_length", (("queue", "delivery"),))] == 3
    assert samples[("celery_queue_length", (("queue", "notifications"),))] == 1
    assert samples[("celery_queue_length", (("queue", "periodic"),))] == 0


def test_the_grafana_dashboard_charts_only_metrics_the_endpoint_serves(client, token, world):
    import json
    import re

    from django.conf import settings

    client.get("/healthz")
    old = use_broker(redis_url(), eager=True)  # queue lengths are read from Redis
    try:
        served = {name for name, _ in scrape(client, token)}
    finally:
        use_broker(*old)
    dashboard = json.loads((settings.BASE_DIR / "docs" / "grafana-dashboard.json").read_text())
    charted = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(?:http_request|celery|entitlements)_\w+", target["expr"])
    }
    assert len(charted) >= 8
    assert charted <= served, charted - served

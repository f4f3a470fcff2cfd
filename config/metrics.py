"""The Prometheus endpoint ``/metrics``, for a scraper holding ``METRICS_TOKEN``.

Two kinds of figures:

- measured in the web process: request latency by view (``MetricsMiddleware``). Under
  gunicorn, set ``PROMETHEUS_MULTIPROC_DIR`` so every worker process's figures are added up;
- read at scrape time, from the database and the broker, so they are the same whichever
  process answers and include the Celery workers' work: queue lengths, the age of the oldest
  waiting grant, removal and email, delivery latency over the last hour, each connected
  system's health and the access reviews in progress. Each is one query on an index.
"""

import hmac
import os
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily

REQUEST_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer a request, by the view that answered it.",
    ["view", "method", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DELIVERY_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 900, 3600)  # seconds
DELIVERY_WINDOW = timedelta(hours=1)


class MetricsMiddleware:
    """Observes each request's duration under its URL name (``unmatched`` for a 404)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or match._func_path) if match else "unmatched"
        REQUEST_LATENCY.labels(view, request.method, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response


# --- Read at scrape time --------------------------------------------------------------------


def queue_lengths():
    """{queue: messages waiting}, from the broker; {} when it cannot say or does not answer."""
    from config.celery import app

    url = app.conf.broker_url or ""
    queues = list(settings.CELERY_TASK_QUEUES)
    if url.startswith(("redis://", "rediss://")):
        import redis

        # kombu keeps a queue's messages in one list per priority step (no suffix for 0).
        steps = app.conf.broker_transport_options.get("priority_steps", [0, 3, 6, 9])
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            with client.pipeline(transaction=False) as pipe:
                for queue in queues:
                    for step in steps:
                        pipe.llen(f"{queue}\x06\x16{step}" if step else queue)
                counts = pipe.execute()
        except redis.RedisError:
            return {}
        finally:
            client.close()
        per_queue = len(steps)
        return {q: sum(counts[i * per_queue : (i + 1) * per_queue]) for i, q in enumerate(queues)}
    if url.startswith("filesystem://"):
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        counts = dict.fromkeys(queues, 0)
        try:
            for entry in os.scandir(folder):
                queue = entry.name.partition(".")[2].removesuffix(".msg")
                if queue in counts:
                    counts[queue] += 1
        except OSError:
            return {}
        return counts
    return {}


def _oldest_ages(now):
    from django.db.models import Min

    from entitlements.models import AssignmentResourceRole, GrantState
    from notifications.models import Notification

    grants = AssignmentResourceRole.objects
    # (state, modified) is grant_state_modified_idx; pending notifications have their own.
    oldest = {
        "grant": grants.filter(state=GrantState.PENDING).aggregate(t=Min("modified"))["t"],
        "removal": grants.filter(state=GrantState.PENDING_REMOVAL).aggregate(t=Min("modified"))[
            "t"
        ],
        "notification": Notification.objects.filter(state=Notification.State.PENDING).aggregate(
            t=Min("created")
        )["t"],
    }
    return {kind: (now - t).total_seconds() if t else 0.0 for kind, t in oldest.items()}


def _delivery_latency(now):
    """Bucket counts and sum of (grant delivered − assignment created) over the last hour."""
    from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum

    from entitlements.models import AssignmentResourceRole, GrantState

    latency = ExpressionWrapper(
        F("delivered_datetime") - F("assignment__created"), output_field=DurationField()
    )
    since = now - DELIVERY_WINDOW
    rows = (
        AssignmentResourceRole.objects.filter(
            # modified >= since narrows grant_state_modified_idx to the window
            state=GrantState.DELIVERED,
            modified__gte=since,
            delivered_datetime__gte=since,
        )
        .annotate(latency=latency)
        .aggregate(
            total=Count("pk"),
            seconds=Sum("latency"),
            **{
                f"le_{b}": Count("pk", filter=Q(latency__lte=timedelta(seconds=b)))
                for b in DELIVERY_BUCKETS
            },
        )
    )
    buckets = [(str(float(b)), rows[f"le_{b}"]) for b in DELIVERY_BUCKETS]
    buckets.append(("+Inf", rows["total"]))
    total_seconds = rows["seconds"].total_seconds() if rows["seconds"] else 0.0
    return buckets, total_seconds


class StateCollector:
    """The figures read from the database and the broker when Prometheus scrapes."""

    def collect(self):
        from entitlements.models import ConnectedSystem
        from reviews.models import ReviewInstance, ReviewStatus

        now = timezone.now()
        depth = GaugeMetricFamily(
            "celery_queue_length", "Messages waiting in a Celery queue.", labels=["queue"]
        )
        for queue, count in queue_lengths().items():
            depth.add_metric([queue], count)
        yield depth

        oldest = GaugeMetricFamily(
            "entitlements_oldest_pending_seconds",
            "How long the oldest waiting grant, removal or email has waited (0 when none); "
            "grants and removals count from their last attempt.",
            labels=["kind"],
        )
        for kind, age in _oldest_ages(now).items():
            oldest.add_metric([kind], age)
        yield oldest

        buckets, total = _delivery_latency(now)
        yield GaugeHistogramMetricFamily(
            "entitlements_delivery_latency_seconds",
            "From an assignment's creation (its approval) to the delivery of each of its "
            "resource roles, for the grants delivered in the last hour.",
            buckets=buckets,
            gsum_value=total,
        )

        failures = GaugeMetricFamily(
            "entitlements_connected_system_consecutive_failures",
            "Consecutive failed calls to a connected system.",
            labels=["system", "kind"],
        )
        unhealthy = GaugeMetricFamily(
            "entitlements_connected_system_unhealthy",
            "1 while a connected system's circuit is open (its work waits), else 0.",
            labels=["system", "kind"],
        )
        for system in ConnectedSystem.objects.only(
            "name", "kind", "consecutive_failures", "settings"
        ):
            failures.add_metric([system.name, system.kind], system.consecutive_failures)
            unhealthy.add_metric([system.name, system.kind], int(system.is_unhealthy))
        yield failures
        yield unhealthy

        reviews = GaugeMetricFamily(
            "entitlements_reviews_in_progress", "Access review instances in progress."
        )
        reviews.add_metric(
            [], ReviewInstance.objects.filter(status=ReviewStatus.IN_PROGRESS).count()
        )
        yield reviews


def render():
    """The exposition text: this process's (or all processes') metrics, then the state."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    state = CollectorRegistry(auto_describe=False)
    state.register(StateCollector())
    return generate_latest(registry) + generate_latest(state)


def _authorized(request):
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), settings.METRICS_TOKEN.encode()
    )


@never_cache
def metrics(request):
    """Prometheus' text format; 404 while no METRICS_TOKEN is set, 401 without it."""
    if not settings.METRICS_TOKEN:
        raise Http404
    if not _authorized(request):
        response = HttpResponse("A bearer token is required.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)

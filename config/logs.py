"""Log lines that say which request (and which person) they belong to, in web and worker.

``RequestLogMiddleware`` puts the request in a context variable that ``ContextFilter`` reads
for every log record (request_id, actor, path), and writes one line per request with its
status and duration. ``before_task_publish`` copies the request id into the headers of every
task the request enqueues, and ``task_prerun`` puts it back in the context variable in the
worker, so a task's lines carry the id of the request that caused them. ``LOG_FORMAT=json``
turns every line into one JSON object (``JsonFormatter``).

Nothing here logs a query string, a body, a header or a URL's secret parts: an emailed
decision link's token and a password reset key are replaced by ``[redacted]``.
"""

import logging
import time
from contextvars import ContextVar

from django.utils.functional import empty
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

request_logger = logging.getLogger("config.requests")

# What the current log lines belong to: {"request_id", "actor", "path"} in a request,
# {"request_id", "task_id", "task_name"} in a task.
log_context = ContextVar("log_context", default=None)
_current_request = ContextVar("current_request", default=None)

# URL parts that are secrets: an emailed decision link, a password reset link.
SECRET_URL_KWARGS = frozenset({"token", "key", "uidb36"})
REDACTED = "[redacted]"
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _secrets_in_url(request):
    match = getattr(request, "resolver_match", None)
    if match is None:
        return []
    return [str(v) for k, v in match.kwargs.items() if k in SECRET_URL_KWARGS and v]


def _redact(text, secrets):
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def safe_path(request):
    """The request's path with the values of secret URL parts replaced."""
    return _redact(request.path, _secrets_in_url(request))


def _actor(request):
    """The signed-in user's id, without making the lazy user load (no query from a filter)."""
    user = request.__dict__.get("user")
    if user is None:
        return None
    wrapped = getattr(user, "_wrapped", user)
    if wrapped is empty or not getattr(wrapped, "is_authenticated", False):
        return None
    return str(wrapped.pk)


def current_request_id():
    context = log_context.get()
    return context.get("request_id") if context else None


class ContextFilter(logging.Filter):
    """Adds request_id, actor and path (or the task) to every record; never drops one."""

    def filter(self, record):
        request = _current_request.get()
        context = log_context.get() or {}
        fields = dict(context)
        if request is not None:
            fields.setdefault("actor", _actor(request))
            fields.setdefault("path", safe_path(request))
            secrets = _secrets_in_url(request)
            if secrets:  # e.g. Django's "Forbidden: /approvals/email/decide/<token>/"
                record.msg, record.args = _redact(record.getMessage(), secrets), ()
        for name in ("request_id", "actor", "path", "task_id", "task_name"):
            if not hasattr(record, name):
                setattr(record, name, fields.get(name))
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: timestamp, level, logger, message and the context fields.

    Fields that are empty (no request, no task) are left out.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault(
            "rename_fields", {"asctime": "timestamp", "levelname": "level", "name": "logger"}
        )
        kwargs.setdefault("timestamp", False)
        # Django's request logs attach the request, whose repr shows the query string.
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "request"])
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s", *args, **kwargs)

    def add_fields(self, log_record, record, message_dict):
        super().add_fields(log_record, record, message_dict)
        for name in ("request_id", "actor", "path", "task_id", "task_name", "status", "duration"):
            value = getattr(record, name, None)
            if value is not None:
                log_record[name] = value
            else:
                log_record.pop(name, None)

    def formatTime(self, record, datefmt=None):  # noqa: N802 - logging's name
        return (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z"
        )


class RequestLogMiddleware:
    """Sets the log context for the request and logs one line when it is answered.

    Placed after ``api.middleware.RequestIdMiddleware``, whose ``request.request_id`` it uses.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        request_token = _current_request.set(request)
        context_token = log_context.set({"request_id": getattr(request, "request_id", None)})
        try:
            response = self.get_response(request)
            duration = round(1000 * (time.perf_counter() - started), 1)
            if request.path in QUIET_PATHS:
                # Probes and scrapes every few seconds would drown the other lines.
                level = logging.DEBUG
            else:
                status = response.status_code
                level = (
                    logging.ERROR
                    if status >= 500
                    else (logging.WARNING if status >= 400 else logging.INFO)
                )
            # This line replaces django.request's "Not Found: <path>", which Django writes
            # after every middleware has returned: outside this context, so unredacted.
            response._has_been_logged = True
            request_logger.log(
                level,
                "%s %s %s",
                request.method,
                safe_path(request),
                response.status_code,
                extra={"status": response.status_code, "duration": duration},
            )
            return response
        finally:
            log_context.reset(context_token)
            _current_request.reset(request_token)


# --- Celery: the request id follows the tasks a request enqueues ----------------------------

REQUEST_ID_HEADER = "request_id"


def on_before_task_publish(headers=None, **kwargs):
    request_id = current_request_id()
    if request_id and headers is not None and REQUEST_ID_HEADER not in headers:
        headers[REQUEST_ID_HEADER] = request_id


_task_tokens = {}


def on_task_prerun(task_id=None, task=None, **kwargs):
    request_id = getattr(task.request, REQUEST_ID_HEADER, None)
    if request_id is None and task.request.is_eager:
        return  # run in the caller's process: its context already holds the request
    token = log_context.set({"request_id": request_id, "task_id": task_id, "task_name": task.name})
    _task_tokens[task_id] = token


def on_task_postrun(task_id=None, **kwargs):
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        try:
            log_context.reset(token)
        except ValueError:  # set in another context (a thread pool): just clear it
            log_context.set(None)

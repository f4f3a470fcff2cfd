"""A request id on every response, as Graph sends one (``request-id``)."""

import uuid


class RequestIdMiddleware:
    """Gives each request an id (``request.request_id``) and answers it in ``request-id``.

    A client's own ``client-request-id`` is echoed back, as Graph does, so a script can
    match its log lines with ours; the server's id is always its own.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = str(uuid.uuid4())
        response = self.get_response(request)
        response["request-id"] = request.request_id
        client_id = request.headers.get("client-request-id", "")
        if client_id and len(client_id) <= 64 and client_id.isprintable():
            response["client-request-id"] = client_id
        return response

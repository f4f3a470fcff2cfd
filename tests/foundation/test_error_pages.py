"""The 400 and 500 pages render on their own: no session, no user, no request body."""

from django.test import RequestFactory

from config.views import bad_request, server_error


def test_the_server_error_page_says_what_happened_and_links_home():
    response = server_error(RequestFactory().get("/"))

    page = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in page
    assert '<a href="/">Go to My Access</a>' in page


def test_the_bad_request_page_says_nothing_was_changed():
    response = bad_request(RequestFactory().post("/", data="x", content_type="text/plain"))

    page = response.content.decode()
    assert response.status_code == 400
    assert "Nothing was changed." in page
    assert '<a href="/">Go to My Access</a>' in page

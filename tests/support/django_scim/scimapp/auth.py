# Bearer-token authentication for the test server: django-scim2 leaves authentication to the
# application (its middleware answers 401 unless request.user is authenticated).
import hmac
import os


class Client:
    """The SCIM client, authenticated; not a row of the user table (it would be listed)."""

    is_authenticated = True
    is_active = True


class Anonymous:
    is_authenticated = False
    is_active = False


class BearerTokenMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.expected = f"Bearer {os.environ['DJANGO_SCIM_TOKEN']}".encode()

    def __call__(self, request):
        given = request.headers.get("Authorization", "").encode()
        ok = hmac.compare_digest(given, self.expected)
        request.user = Client() if ok else Anonymous()
        return self.get_response(request)

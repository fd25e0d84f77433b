# Runs django-scim2 (PyPI) as a SCIM 2.0 service provider for scimsync's tests: django-scim2's
# views and adapters, unchanged, in a minimal Django project with an in-memory SQLite database.
#
#   DJANGO_SCIM_TOKEN=TOKEN python server.py [--port 0]
#
# Prints `LISTENING <port>` on stdout once it accepts connections; serves
# http://127.0.0.1:PORT/scim/v2/. Requests without `Authorization: Bearer TOKEN` get 401.
#
# What the glue decides (django-scim2 leaves it to the application): the models (scimapp/models.py,
# as django-scim2's documentation shows), the bearer token (scimapp/auth.py), and the base URL of
# meta.location. One thread serves every request in turn (the in-memory database lives in it).
import argparse
import logging
import os
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

# The glue's own modules are imported from the checkout: leave no __pycache__ there.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def main():
    p = argparse.ArgumentParser(description="django-scim2 on loopback, for scimsync's tests")
    p.add_argument("--port", type=int, default=0)
    opts = p.parse_args()
    if not os.environ.get("DJANGO_SCIM_TOKEN"):
        sys.exit("server.py: a bearer token is required in $DJANGO_SCIM_TOKEN")

    server = make_server("127.0.0.1", opts.port, None, WSGIServer, QuietHandler)
    port = server.server_address[1]

    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="scimsync-tests-only",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "django_scim", "scimapp"],
        MIDDLEWARE=["scimapp.auth.BearerTokenMiddleware"],
        ROOT_URLCONF="scimapp.urls",
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        AUTH_USER_MODEL="scimapp.User",
        USE_TZ=True,
        APPEND_SLASH=False,
        LOGGING_CONFIG=None,
        SCIM_SERVICE_PROVIDER={
            "GROUP_MODEL": "scimapp.models.Group",
            "SCHEME": "http",
            "NETLOC": f"127.0.0.1:{port}",
            "AUTHENTICATION_SCHEMES": [
                {"type": "oauthbearertoken", "name": "Bearer token", "description": "A static bearer token"}
            ],
            "WWW_AUTHENTICATE_HEADER": 'Bearer realm="django-scim2"',
        },
    )
    django.setup()
    # Django logs every 4xx/5xx answer (a 501 is a normal answer here); django-scim2's own logger
    # still prints the traceback of a request that failed with an exception.
    logging.getLogger("django.request").setLevel(logging.CRITICAL)

    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    call_command("migrate", run_syncdb=True, verbosity=0)
    server.set_app(get_wsgi_application())
    print(f"LISTENING {port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

"""An authentication backend for tests: Django's own, that needs the request, as one reading
the client's address or a header does."""

from django.contrib.auth.backends import ModelBackend


class RequestModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)

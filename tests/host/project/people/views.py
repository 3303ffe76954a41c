"""The host's own API, under its own REST_FRAMEWORK defaults."""

from rest_framework.response import Response
from rest_framework.views import APIView


def host_exception_handler(exc, context):
    """The host's error shape, unlike the app's {"detail", "code"}."""
    from rest_framework.views import exception_handler

    response = exception_handler(exc, context)
    if response is not None:
        response.data = {"error": {"status": response.status_code, "message": str(exc)}}
    return response


class WhoAmI(APIView):
    schema = None  # not in the OpenAPI schema (drf-spectacular would guess at it, W002)

    def get(self, request):
        return Response({"user": request.user.get_username()})

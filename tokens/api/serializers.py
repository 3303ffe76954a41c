import unicodedata

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class UsernameField(serializers.CharField):
    """Trimmed and NFKC-normalised, as Django's login forms and user model do."""

    def to_internal_value(self, data) -> str:
        return unicodedata.normalize("NFKC", super().to_internal_value(data))


class ObtainSerializer(serializers.Serializer):
    username = UsernameField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)


class PasswordResetSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class PasswordResetConfirmSerializer(serializers.Serializer):
    uid = serializers.CharField(max_length=64)
    token = serializers.CharField(max_length=128)
    new_password = serializers.CharField(max_length=4096, trim_whitespace=False)


class PasswordChangeSerializer(serializers.Serializer):
    old_password = serializers.CharField(max_length=4096, trim_whitespace=False)
    new_password = serializers.CharField(max_length=4096, trim_whitespace=False)


@extend_schema_field(OpenApiTypes.STR)
class TokenField(serializers.Field):
    """A token is a JSON string: any other type is malformed input (400), while any string,
    however odd (empty, NUL bytes), is judged by the token service (401, or 204 on logout)."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


class RefreshTokenSerializer(serializers.Serializer):
    refresh_token = TokenField()


class TokenPairSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    token_type = serializers.CharField(default="Bearer")
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")
    refresh_expires_in = serializers.IntegerField(
        help_text="Seconds until the refresh token expires."
    )


class CookiePairSerializer(serializers.Serializer):
    """A pair in cookie mode: the refresh token is in the tokens_refresh cookie instead."""

    access_token = serializers.CharField()
    token_type = serializers.CharField(default="Bearer")
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")
    refresh_expires_in = serializers.IntegerField(
        help_text="Seconds until the refresh token (the cookie) expires."
    )


class SessionSerializer(serializers.Serializer):
    id = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(help_text="Last refresh of the session.")
    expires_at = serializers.DateTimeField(help_text="When the session ends unless refreshed.")
    user_agent = serializers.CharField()
    ip_address = serializers.CharField()
    current = serializers.SerializerMethodField(
        help_text="Whether this is the session of the token making the request."
    )

    def get_current(self, session) -> bool:
        return session.id == self.context.get("current_session_id")


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.CharField(help_text="Email address; empty when none is set.")


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.DictField(
        required=False, child=serializers.ListField(child=serializers.DictField()),
        help_text="On a 400: each invalid field (or header) with its messages and codes.",
    )

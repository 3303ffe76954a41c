"""Security events in the Django admin: read-only, filtered by kind and date, searched by
username and address. Rows are removed only by the retention purge
(`manage.py purge_security_events`), never from the admin."""

from urllib.parse import urlencode

from django.contrib import admin
from django.template.defaultfilters import date as date_format
from django.urls import reverse
from django.utils.html import format_html

from tokens.models import SecurityEvent

SHORT_ID = 8  # characters of a session id the admin shows and writes to the history


def short_id(session_id: str) -> str:
    """The start of a session id, as the Sessions page and the security events show it and
    the history records it."""
    return session_id[:SHORT_ID]


def events_of_user_url(user) -> str:
    """The events changelist filtered to one user (to link from the user's page)."""
    changelist = reverse("admin:tokens_securityevent_changelist")
    return f"{changelist}?{urlencode({'user__id__exact': user.pk})}"


@admin.register(SecurityEvent)
class SecurityEventAdmin(admin.ModelAdmin):
    list_display = ["when", "kind", "username", "ip_address", "session", "sessions_ended",
                    "by"]
    list_filter = ["kind", "created_at"]
    date_hierarchy = "created_at"
    search_fields = ["username", "ip_address"]
    fields = ["created_at", "kind", "user", "username", "ip_address", "user_agent",
              "session_id", "sessions_ended", "by"]
    readonly_fields = fields
    list_select_related = ["user"]
    show_full_result_count = False  # a large table: no COUNT(*) of every row per page

    @admin.display(description="when", ordering="created_at")
    def when(self, event: SecurityEvent) -> str:
        # To the second, as the Sessions page: events minutes apart tell different stories.
        return format_html('<time datetime="{}">{}</time>', date_format(event.created_at, "c"),
                           date_format(event.created_at, "Y-m-d H:i:s T"))

    @admin.display(description="session", ordering="session_id")
    def session(self, event: SecurityEvent) -> str:
        short = short_id(event.session_id)
        return format_html('<code title="{}">{}</code>', event.session_id, short) if short else "–"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

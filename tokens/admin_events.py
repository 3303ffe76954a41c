"""Security events in the Django admin: read-only, filtered by kind and date, searched by
username and address. Rows are removed only by the retention purge
(`manage.py purge_security_events`), never from the admin."""

from django.contrib import admin
from django.urls import reverse
from urllib.parse import urlencode

from tokens.models import SecurityEvent


def events_of_user_url(user) -> str:
    """The events changelist filtered to one user (to link from the user's page)."""
    changelist = reverse("admin:tokens_securityevent_changelist")
    return f"{changelist}?{urlencode({'user__id__exact': user.pk})}"


@admin.register(SecurityEvent)
class SecurityEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "username", "ip_address", "session_id",
                    "sessions_ended", "by"]
    list_filter = ["kind", "created_at"]
    date_hierarchy = "created_at"
    search_fields = ["username", "ip_address"]
    fields = ["created_at", "kind", "user", "username", "ip_address", "user_agent",
              "session_id", "sessions_ended", "by"]
    readonly_fields = fields
    list_select_related = ["user"]
    show_full_result_count = False  # a large table: no COUNT(*) of every row per page

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

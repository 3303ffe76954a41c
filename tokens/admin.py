"""Sessions in the Django admin: a panel on the user change page, and a changelist action.

Seeing or revoking sessions takes the permission to change the user, as editing does.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from tokens import services
from tokens.exceptions import SessionNotFound, StoreUnavailable

STORE_DOWN = "The token store is unavailable: nothing was revoked. Try again shortly."


class UserSessionsAdminMixin:
    """Mix into the user ModelAdmin (before admin.ModelAdmin)."""

    change_form_template = "admin/tokens/user_change_form.html"
    actions = ["revoke_all_sessions"]

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_revoke_sessions"
        view = self.admin_site.admin_view(require_POST(self.revoke_sessions_view))
        return [path("<path:object_id>/sessions/revoke/", view, name=name), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        user = self.get_object(request, unquote(object_id))
        context = {**(extra_context or {})}
        if user is not None and self.has_change_permission(request, user):
            context["show_token_sessions"] = True
            try:
                context["token_sessions"] = services.list_sessions(user=user)
            except StoreUnavailable:
                context["token_store_unavailable"] = True
        return super().change_view(request, object_id, form_url, extra_context=context)

    def revoke_sessions_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        user = self.get_object(request, unquote(object_id))
        if user is None:
            raise Http404
        if not self.has_change_permission(request, user):
            raise PermissionDenied
        session_id = request.POST.get("session", "")
        try:
            if session_id:
                services.revoke_session(user=user, session_id=session_id)
                self.log_change(request, user, f"Revoked session {session_id}.")
                self.message_user(request, f"Revoked 1 session of {user}.", messages.SUCCESS)
            else:
                self._revoke_all(request, user)
        except SessionNotFound:
            self.message_user(request, "That session had already ended.", messages.WARNING)
        except StoreUnavailable:
            self.message_user(request, STORE_DOWN, messages.ERROR)
        info = self.opts.app_label, self.opts.model_name
        return HttpResponseRedirect(reverse(f"admin:{info[0]}_{info[1]}_change", args=[user.pk]))

    @admin.action(description="Revoke all sessions of selected users", permissions=["change"])
    def revoke_all_sessions(self, request: HttpRequest, queryset) -> None:
        try:
            for user in queryset:
                self._revoke_all(request, user)
        except StoreUnavailable:
            self.message_user(request, STORE_DOWN, messages.ERROR)

    def _revoke_all(self, request: HttpRequest, user) -> None:
        count = services.revoke_all_sessions(user_id=user.pk)
        self.log_change(request, user, f"Revoked all sessions ({count}).")
        self.message_user(request, f"Revoked {count} session(s) of {user}.", messages.SUCCESS)

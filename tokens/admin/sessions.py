"""The user admin's mixins: sessions, and who may grant privileges.

UserSessionsAdminMixin: a Sessions page per user, linked from the user's change page, with
Django's confirmation step before every revoke-all (the page's and the changelist action).
Seeing sessions takes `tokens.view_session`, revoking them `tokens.revoke_session`, each with
the permission to view the user; a superuser's sessions only a superuser sees or revokes.

UserPrivilegesAdminMixin: only a superuser grants privileges (superuser status, groups,
permissions), sets another user's password, or changes or deletes a user who may do more
than they may (a superuser above all): else the permission to change users is a way to
become anyone, superuser included.
"""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.text import capfirst
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from tokens import services

# Registers the security events' read-only changelist, linked from each user's page.
from tokens.admin.events import events_of_user_url, short_id
from tokens.exceptions import ReplicasBehind, SessionNotFound, StoreUnavailable
from tokens.types import EndReason

STORE_DOWN = "The token store is unavailable: nothing was revoked. Try again shortly."
# With TOKENS["REPLICA_ACKS"]: the revocation stands on the primary, not yet on its replicas.
REPLICAS_BEHIND = ("Revoked, but the token store's replicas have not confirmed it yet: "
                   "check this page again shortly.")
SUPERUSER_SESSIONS = "Only a superuser may revoke a superuser's sessions: nothing was revoked."


def _store_message(error: StoreUnavailable) -> str:
    return REPLICAS_BEHIND if isinstance(error, ReplicasBehind) else STORE_DOWN


def _rows(sessions) -> list[dict]:
    return [{"session": session, "short_id": short_id(session.id)} for session in sessions]


class UserSessionsAdminMixin:
    """Mix into the user ModelAdmin (before admin.ModelAdmin)."""

    change_form_template = "admin/tokens/user_change_form.html"
    sessions_template = "admin/tokens/user_sessions.html"
    revoke_confirmation_template = "admin/tokens/revoke_sessions_confirmation.html"
    actions = ["revoke_all_sessions"]

    def get_urls(self):
        def url(route, view, name):
            return path(f"<path:object_id>/sessions/{route}", self.admin_site.admin_view(view),
                        name=f"{self.opts.app_label}_{self.opts.model_name}_{name}")

        return [
            url("", self.sessions_view, "sessions"),
            url("revoke/", require_POST(self.revoke_session_view), "revoke_session"),
            url("revoke-all/", self.revoke_all_view, "revoke_all_sessions"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        user = self.get_object(request, unquote(object_id))
        context = {**(extra_context or {})}
        if user is not None and self.has_view_session_permission(request, user):
            context["sessions_url"] = self._sessions_url(user)
            try:
                context["sessions_count"] = len(services.list_sessions(user=user))
            except StoreUnavailable:
                pass  # the link still leads to the Sessions page, which says why
        if user is not None and request.user.has_perm("tokens.view_securityevent"):
            context["events_url"] = events_of_user_url(user)
        return super().change_view(request, object_id, form_url, extra_context=context)

    def has_view_session_permission(self, request: HttpRequest, user=None) -> bool:
        """Whether the request may see sessions (of `user`, if given)."""
        return self._sessions_permission(request, user, "tokens.view_session")

    def has_revoke_session_permission(self, request: HttpRequest, user=None) -> bool:
        """Whether the request may revoke sessions (of `user`, if given)."""
        return self._sessions_permission(request, user, "tokens.revoke_session")

    def _sessions_permission(self, request: HttpRequest, user, perm: str) -> bool:
        if not request.user.has_perm(perm):
            return False
        # A superuser's sessions name where they log in from, and ending them is how to keep
        # them out: a superuser's business only.
        return user is None or (self.has_view_or_change_permission(request, user) and (
            request.user.is_superuser or not user.is_superuser))

    def sessions_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        user = self._user_to_manage(request, object_id, self.has_view_session_permission)
        try:
            rows, unavailable = _rows(services.list_sessions(user=user)), False
        except StoreUnavailable:
            rows, unavailable = [], True
        return self._render(request, self.sessions_template, user, f"Sessions of {user}",
                            rows=rows, store_unavailable=unavailable,
                            may_revoke=self.has_revoke_session_permission(request, user))

    def revoke_session_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        user = self._user_to_manage(request, object_id, self.has_revoke_session_permission)
        session_id = request.POST.get("session", "")
        short = short_id(session_id)
        try:
            services.revoke_session(user=user, session_id=session_id, reason=EndReason.ADMIN,
                                    by=request.user.get_username())
            self.log_change(request, user, f"Revoked session {short}.")
            self.message_user(request, f"Revoked session {short} of {user}.", messages.SUCCESS)
        except SessionNotFound:
            self.message_user(request, "That session had already ended.", messages.WARNING)
        except StoreUnavailable as error:
            self.message_user(request, _store_message(error), messages.ERROR)
        return HttpResponseRedirect(self._sessions_url(user))

    def revoke_all_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Django's delete confirmation, for sessions: GET asks, POST revokes."""
        user = self._user_to_manage(request, object_id, self.has_revoke_session_permission)
        try:
            if request.method == "POST":
                self._report(request, {user: self._revoke_all(request, user)})
                return HttpResponseRedirect(self._sessions_url(user))
            targets = [(user, _rows(services.list_sessions(user=user)))]
        except StoreUnavailable as error:
            self.message_user(request, _store_message(error), messages.ERROR)
            return HttpResponseRedirect(self._sessions_url(user))
        return self._render(request, self.revoke_confirmation_template, user, "Are you sure?",
                            targets=targets, cancel_url=self._sessions_url(user))

    @admin.action(description="Revoke all sessions of selected users",
                  permissions=["revoke_session"])
    def revoke_all_sessions(self, request: HttpRequest, queryset):
        """Like Django's delete_selected: a confirmation page first, the revocation on "post"."""
        if not all(self.has_revoke_session_permission(request, user) for user in queryset):
            self.message_user(request, SUPERUSER_SESSIONS, messages.ERROR)  # not one of them
            return None
        try:
            if request.POST.get("post"):
                self._report(request, {user: self._revoke_all(request, user) for user in queryset})
                return None
            targets = [(user, _rows(services.list_sessions(user=user))) for user in queryset]
        except StoreUnavailable as error:
            self.message_user(request, _store_message(error), messages.ERROR)
            return None
        return self._render(request, self.revoke_confirmation_template, None, "Are you sure?",
                            targets=targets, queryset=queryset,
                            action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
                            cancel_url=reverse(f"admin:{self._info()}_changelist"))

    def _revoke_all(self, request: HttpRequest, user) -> int:
        count = services.revoke_all_sessions(user_id=user.pk, reason=EndReason.ADMIN,
                                             by=request.user.get_username())
        if count:  # nothing revoked, nothing to record
            self.log_change(request, user, f"Revoked all sessions ({count}).")
        return count

    def _report(self, request: HttpRequest, counts: dict) -> None:
        total, users = sum(counts.values()), [user for user, n in counts.items() if n]
        if not total:
            self.message_user(request, "No live sessions: nothing was revoked.", messages.INFO)
            return
        sessions = ngettext("%d session", "%d sessions", total) % total
        whose = users[0] if len(users) == 1 else f"{len(users)} users"
        self.message_user(request, f"Revoked {sessions} of {whose}.", messages.SUCCESS)

    def _user_to_manage(self, request: HttpRequest, object_id: str, permitted):
        user = self.get_object(request, unquote(object_id))
        if user is None:
            raise Http404
        if not permitted(request, user):
            raise PermissionDenied
        return user

    def _render(self, request, template, user, title, **context) -> TemplateResponse:
        request.current_app = self.admin_site.name
        return TemplateResponse(request, template, {
            **self.admin_site.each_context(request), "title": title, "subtitle": None,
            "opts": self.opts, "module_name": str(capfirst(self.opts.verbose_name_plural)),
            "object": user, **context,
        })

    def _info(self) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}"

    def _sessions_url(self, user) -> str:
        return reverse(f"admin:{self._info()}_sessions", args=[user.pk])

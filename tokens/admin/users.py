"""The user admin's privileges: who may grant them, and change whom."""

from django.contrib.admin.utils import unquote
from django.contrib.auth.models import Permission, PermissionsMixin
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

# What only a superuser may grant.
PRIVILEGES = ("is_superuser", "groups", "user_permissions")


class UserPrivilegesAdminMixin:
    """Mix into the user ModelAdmin (before Django's UserAdmin)."""

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return fields
        return [*fields, *(name for name in PRIVILEGES if name not in fields)]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return super().has_change_permission(request, obj) and _may_change(request.user, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # Also what delete_selected asks of each selected user.
        return super().has_delete_permission(request, obj) and _may_change(request.user, obj)

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = ""):
        # The form sets a password without the old one: a superuser's tool. Staff change
        # their own where the old one is asked for, within the login limits.
        if not request.user.is_superuser:
            user = self.get_object(request, unquote(id))
            if user is None or user.pk != request.user.pk:
                raise PermissionDenied
            return HttpResponseRedirect(reverse("admin:password_change",
                                                current_app=self.admin_site.name))
        return super().user_change_password(request, id, form_url)


def _may_change(actor, user) -> bool:
    """Whether `actor` may change `user`: a superuser may change anyone, others only users
    who are no superuser and hold no permission the actor lacks."""
    if actor.is_superuser or user is None:
        return True
    return not user.is_superuser and _granted(user) <= actor.get_all_permissions()


def _granted(user) -> set[str]:
    # What the user holds, directly or through a group, active or not (the permissions of
    # an inactive account come back when it is reactivated).
    if not isinstance(user, PermissionsMixin):
        return set()
    rows = (Permission.objects.filter(Q(user=user) | Q(group__user=user))
            .values_list("content_type__app_label", "codename").distinct())
    return {f"{app_label}.{codename}" for app_label, codename in rows}

"""Django's admin site, with its login and its password change inside the login limits.

Installed as the default site by `tokens.apps.AdminConfig` (in place of
"django.contrib.admin" in INSTALLED_APPS), so `admin.site` is this class everywhere.
"""

from functools import partial

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm, AdminPasswordChangeForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from tokens import services
from tokens.api.clients import client_info, set_device_cookie
from tokens.exceptions import InvalidCredentials, LoginThrottled, StoreUnavailable
from tokens.services import login_limits

# Where a successful login leaves the device cookie for the login view to hand out.
NEW_DEVICE_COOKIE = "_tokens_new_device_cookie"


def _refusal(exc: LoginThrottled | StoreUnavailable) -> ValidationError:
    if isinstance(exc, LoginThrottled):
        return ValidationError(
            "Too many failed login attempts for this account or from this address. "
            "Try again in %(seconds)d seconds.",
            code="throttled", params={"seconds": max(1, round(exc.wait + 0.5))})
    return ValidationError("The token store is unavailable, so logins cannot be checked "
                           "against their limits. Try again shortly.", code="unavailable")


class LimitedAuthenticationForm(AdminAuthenticationForm):
    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            client = client_info(self.request)
            try:
                self.user_cache = services.check_login(
                    request=self.request, username=username, password=password, client=client,
                    allowed=self._login_allowed)
            except InvalidCredentials:
                raise self.get_invalid_login_error() from None
            except (LoginThrottled, StoreUnavailable) as exc:
                raise _refusal(exc) from None
            setattr(self.request, NEW_DEVICE_COOKIE, login_limits.device_cookie(
                username=self.user_cache.get_username(), presented=client.device_cookies))
        return self.cleaned_data

    def _login_allowed(self, user) -> bool:
        # Whatever Django's form refuses after a right password (not staff, inactive) is
        # answered and counted as a wrong password: its own message would tell them apart.
        try:
            self.confirm_login_allowed(user)
        except ValidationError:
            return False
        return True


class LimitedPasswordChangeForm(AdminPasswordChangeForm):
    def __init__(self, user, *args, request: HttpRequest, **kwargs):
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self) -> str:
        old_password = self.cleaned_data["old_password"]
        try:
            correct = services.password_matches(
                user=self.user, password=old_password, client=client_info(self.request))
        except (LoginThrottled, StoreUnavailable) as exc:
            raise _refusal(exc) from None
        if not correct:
            raise ValidationError(self.error_messages["password_incorrect"],
                                  code="password_incorrect")
        return old_password


class AdminSite(admin.AdminSite):
    login_form = LimitedAuthenticationForm

    def login(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        response = super().login(request, extra_context)
        device_cookie = getattr(request, NEW_DEVICE_COOKIE, None)
        if device_cookie:
            set_device_cookie(response, request, device_cookie)
        return response

    def password_change(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        # Django's own view, with the form above (AdminSite has no hook for that form).
        from django.contrib.auth.views import PasswordChangeView

        defaults = {
            "form_class": partial(LimitedPasswordChangeForm, request=request),
            "success_url": reverse("admin:password_change_done", current_app=self.name),
            "extra_context": {**self.each_context(request), **(extra_context or {})},
        }
        if self.password_change_template is not None:
            defaults["template_name"] = self.password_change_template
        request.current_app = self.name
        return PasswordChangeView.as_view(**defaults)(request)

"""The app's admin: a Sessions page per user (sessions), the privileges of the user admin
(users), the security events' read-only list (events, registered here) and the admin site
whose logins obey the login limits (tokens.sites: the site, installed by tokens.apps.AdminConfig, lives outside this package, which registers on it)."""

from tokens.admin import events  # noqa: F401 (registers the security events' admin)
from tokens.admin.sessions import UserSessionsAdminMixin
from tokens.admin.users import UserPrivilegesAdminMixin

__all__ = ["UserPrivilegesAdminMixin", "UserSessionsAdminMixin"]

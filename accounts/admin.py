from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import User
from tokens.admin import UserPrivilegesAdminMixin, UserSessionsAdminMixin


@admin.register(User)
class AccountUserAdmin(UserPrivilegesAdminMixin, UserSessionsAdminMixin, UserAdmin):
    pass

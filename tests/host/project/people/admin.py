from django.contrib import admin
from django.contrib.auth import get_user_model

from tokens.admin import UserSessionsAdminMixin


@admin.register(get_user_model())
class UserAdmin(UserSessionsAdminMixin, admin.ModelAdmin):
    search_fields = ["email"]

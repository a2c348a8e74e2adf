from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Staff and audit"

    def ready(self) -> None:
        from accounts import checks  # noqa: F401 - registers the system checks
        from accounts.roles import sync_roles_after_migrate

        # Roles are reference data tied to the permissions that migrations create,
        # so they are (re)synced after every migrate, in tests too.
        post_migrate.connect(sync_roles_after_migrate, sender=self)

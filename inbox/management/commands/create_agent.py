from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from inbox.models import Account, Membership


class Command(BaseCommand):
    help = "Create (or update) an agent login belonging to an account."

    def add_arguments(self, parser):
        parser.add_argument("--account", required=True)
        parser.add_argument("--username", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--admin", action="store_true", help="also give Django admin access")

    @transaction.atomic
    def handle(self, *args, account: str, username: str, password: str, admin: bool, **options):
        account_obj, _ = Account.objects.get_or_create(name=account)
        User = get_user_model()
        user, _ = User.objects.get_or_create(username=username)
        existing = Membership.objects.filter(user=user).exclude(account=account_obj).first()
        if existing:
            raise CommandError(f"{username} already belongs to account {existing.account.name!r}")
        user.set_password(password)
        if admin:
            user.is_staff = user.is_superuser = True
        user.save()
        Membership.objects.update_or_create(
            user=user,
            defaults={
                "account": account_obj,
                "role": Membership.Role.ADMIN if admin else Membership.Role.AGENT,
            },
        )
        self.stdout.write(f"Agent {username} belongs to {account_obj.name}")

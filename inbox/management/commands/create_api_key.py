from django.core.management.base import BaseCommand

from inbox.models import Account, ApiKey


class Command(BaseCommand):
    help = "Create an API key for an account (created if missing); prints the key last."

    def add_arguments(self, parser):
        parser.add_argument("--account", required=True)
        parser.add_argument("--name", default="")

    def handle(self, *args, account: str, name: str, **options):
        account_obj, created = Account.objects.get_or_create(name=account)
        if created:
            self.stderr.write(f"Created account {account_obj.name!r}")
        raw_key = ApiKey.generate()
        api_key = ApiKey(account=account_obj, name=name)
        api_key.set_key(raw_key)
        api_key.save()
        self.stderr.write("Store this key now: only its hash is kept.")
        self.stdout.write(raw_key)

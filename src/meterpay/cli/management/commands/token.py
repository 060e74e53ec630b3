"""``meterpay token create --user USERNAME [--name NAME]``.

Prints the new token alone on its last line (so scripts can take ``tail -n 1``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from meterpay.apps.users.models import ApiToken, User
from meterpay.apps.users.services import api_token_create, api_token_revoke


class Command(BaseCommand):
    help = "Create, list or revoke API tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a token for a user")
        create.add_argument("--user", required=True, help="the username the token acts as")
        create.add_argument("--name", default="CLI token", help="a label to recognise the token by")
        listing = sub.add_parser("list", help="list a user's tokens")
        listing.add_argument("--user", required=True)
        revoke = sub.add_parser("revoke", help="revoke a token by its prefix")
        revoke.add_argument("--user", required=True)
        revoke.add_argument("prefix")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = User.objects.get(username=options["user"])
        except User.DoesNotExist:
            raise CommandError(f"no user {options['user']!r}") from None
        if options["action"] == "create":
            token, raw = api_token_create(actor="cli", user=user, name=options["name"])
            self.stderr.write(
                f"Created token {token.prefix}… for {user.username}; it is shown only once:"
            )
            self.stdout.write(raw)
        elif options["action"] == "list":
            for token in ApiToken.objects.filter(user=user):
                state = "revoked" if token.revoked_at else "active"
                self.stdout.write(
                    f"{token.prefix}…\t{token.name}\t{token.created_at:%Y-%m-%d %H:%M}\t{state}"
                )
        else:
            token = ApiToken.objects.filter(user=user, prefix=options["prefix"]).first()
            if token is None:
                raise CommandError(
                    f"no token with prefix {options['prefix']!r} for {user.username}"
                )
            api_token_revoke(actor="cli", token=token)
            self.stdout.write(f"revoked {token.prefix}…")

"""``hokusai contributors ...`` (proving addresses, over the server's REST API
with the MLflow client's credentials) and ``hokusai ledger verify|export``
(reading the ledger from the database, as a payout job does)."""

from __future__ import annotations

import json
import sys

import click

from mlflow_hokusai.cli_permissions import _client, _Group, tracking_option


@click.group(cls=_Group)
def contributors():
    """Link Ethereum addresses to your principal by signing a challenge (SIWE)."""


@contributors.command("challenge")
@click.option("--address", required=True, help="The Ethereum address to prove.")
@tracking_option
def challenge(address, tracking_uri):
    """Print the message to sign with the address's key (EIP-191 personal_sign)."""
    click.echo(_client(tracking_uri).contributor_challenge(address)["message"])


@contributors.command("link")
@click.option("--message-file", type=click.File("r"), required=True,
              help="The challenge message exactly as printed ('-': standard input).")
@click.option("--signature", required=True, help="The signature, 0x + 130 hex digits.")
@tracking_option
def link(message_file, signature, tracking_uri):
    """Hand back the signed challenge: the address is then linked to you."""
    message = message_file.read().removesuffix("\n")
    linked = _client(tracking_uri).link_contributor(message, signature)
    click.echo(f"Linked {linked['address']} to {linked['principal']}")


@contributors.command("me")
@tracking_option
def me(tracking_uri):
    """Your principal and the addresses it has proven."""
    click.echo(json.dumps(_client(tracking_uri).my_contributor_links()))


@contributors.command("unlink")
@click.option("--principal", required=True)
@click.option("--address", required=True)
@tracking_option
def unlink(principal, address, tracking_uri):
    """Admin: remove a principal's link to an address."""
    _client(tracking_uri).unlink_contributor(principal, address)
    click.echo(f"Unlinked {address} from {principal}")


def _ledger(database_uri):
    from mlflow_hokusai.cli import engine_for
    from mlflow_hokusai.plugins.ledger.chain import Ledger

    return Ledger(engine_for(database_uri))


def ledger_group(database_option):
    @click.group(cls=_Group)
    def ledger():
        """The hash-chained contribution ledger."""

    @ledger.command("verify")
    @database_option
    def verify(database_uri):
        """Recompute the chain; name the first broken entry (exit status 1)."""
        count, broken = _ledger(database_uri).verify()
        if broken:
            click.echo(f"BROKEN at entry {broken['seq']} ({broken['event']}, "
                       f"{broken['token_id'] or broken['principal']}): {broken['problem']}; "
                       f"{count} entries before it are intact", err=True)
            sys.exit(1)
        click.echo(f"OK: {count} entries, the chain is intact")

    @ledger.command("export")
    @click.option("--token", "token_id", required=True, help="The token whose entries to write.")
    @click.option("--output", type=click.File("w"), default="-", help="File (default: stdout).")
    @database_option
    def export(token_id, output, database_uri):
        """Verify the chain, then write the token's entries as JSON lines (each
        with its seq, prev_hash and hash, so a payout job can check them)."""
        from mlflow_hokusai.plugins.ledger.chain import as_json

        chain = _ledger(database_uri)
        count, broken = chain.verify()
        if broken:
            raise click.ClickException(f"The ledger is broken at entry {broken['seq']}: "
                                       f"{broken['problem']}; run `hokusai ledger verify`")
        for entry in chain.entries(token_id=token_id):
            output.write(json.dumps(as_json(entry), sort_keys=True) + "\n")

    return ledger

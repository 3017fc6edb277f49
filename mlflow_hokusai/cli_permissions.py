"""``hokusai permissions grant|revoke|list``: grants through the server's REST
API (so who may grant is the server's decision, and each grant is audited),
with the credentials MLflow clients use (``MLFLOW_TRACKING_TOKEN``, ...)."""

from __future__ import annotations

import json
import os

import click

from mlflow_hokusai.plugins.auth.grants import GRANTABLE

tracking_option = click.option(
    "--tracking-uri", default=lambda: os.environ.get("MLFLOW_TRACKING_URI"), metavar="URL",
    help="The server (default: $MLFLOW_TRACKING_URI); the key is $MLFLOW_TRACKING_TOKEN.")
experiment_option = click.option("--experiment", "experiment_id", default=None, metavar="ID",
                                 help="An experiment id.")
model_option = click.option("--model", "model_name", default=None, metavar="NAME",
                            help="A registered model's name.")


def _resource(experiment_id, model_name, *, required=True):
    if experiment_id and model_name:
        raise click.UsageError("Give --experiment or --model, not both")
    if experiment_id:
        return "experiment", experiment_id
    if model_name:
        return "registered_model", model_name
    if required:
        raise click.UsageError("Give --experiment ID or --model NAME")
    return None, None


def _client(tracking_uri):
    from mlflow_hokusai.client import HokusaiClient

    if not tracking_uri:
        raise click.UsageError("Give --tracking-uri or set MLFLOW_TRACKING_URI")
    return HokusaiClient(tracking_uri)


class _Group(click.Group):
    def invoke(self, ctx):
        from mlflow_hokusai.client import HokusaiClientError

        try:
            return super().invoke(ctx)
        except HokusaiClientError as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=_Group)
def permissions():
    """Who may read, edit or manage an experiment or registered model."""


@permissions.command("grant")
@click.option("--user", "username", required=True, help="The principal (a key's owner).")
@experiment_option
@model_option
@click.option("--permission", type=click.Choice(GRANTABLE), required=True)
@tracking_option
def grant(username, experiment_id, model_name, permission, tracking_uri):
    """Grant USER a permission (needs MANAGE on the resource, or an admin key)."""
    resource_type, resource_id = _resource(experiment_id, model_name)
    _client(tracking_uri).grant_permission(username, resource_type, resource_id, permission)
    click.echo(f"Granted {permission} on {resource_type} {resource_id} to {username}")


@permissions.command("revoke")
@click.option("--user", "username", required=True)
@experiment_option
@model_option
@tracking_option
def revoke(username, experiment_id, model_name, tracking_uri):
    """Remove USER's grant; they fall back to the server's default permission."""
    resource_type, resource_id = _resource(experiment_id, model_name)
    _client(tracking_uri).revoke_permission(username, resource_type, resource_id)
    click.echo(f"Revoked {username}'s grant on {resource_type} {resource_id}")


@permissions.command("list")
@click.option("--user", "username", default=None, help="Only this principal's grants.")
@experiment_option
@model_option
@tracking_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_grants(username, experiment_id, model_name, tracking_uri, as_json):
    """Grants: yours, those on a resource you manage, or (admin key) anyone's."""
    resource_type, resource_id = _resource(experiment_id, model_name, required=False)
    rows = _client(tracking_uri).list_permissions(username=username, resource_type=resource_type,
                                                  resource_id=resource_id)
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        click.echo(f"{row['resource_type']:<17} {row['resource_id']:<30} {row['username']:<24} "
                   f"{row['permission']:<14} granted by {row['granted_by']}")

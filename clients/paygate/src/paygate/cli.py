"""The ``paygate`` command: ``listen --forward-to``, ``trigger``, ``events list|resend``."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

import click
import httpx
from rich.console import Console
from rich.table import Table

from paygate.client import Client
from paygate.errors import APIError, PaygateError
from paygate.webhook import Webhook, new_secret

console = Console(highlight=False, soft_wrap=True)


@click.group()
@click.option("--api-key", envvar="PAYGATE_API_KEY", help="API key (or PAYGATE_API_KEY).")
@click.option("--api-secret", envvar="PAYGATE_API_SECRET", help="API secret (or PAYGATE_API_SECRET).")
@click.option("--base-url", envvar="PAYGATE_BASE_URL", default="http://localhost:8000/api/v1", show_default=True,
              help="The gateway's API (or PAYGATE_BASE_URL).")
@click.pass_context
def main(ctx: click.Context, api_key: str | None, api_secret: str | None, base_url: str) -> None:
    """Work with a local payment gateway from the terminal."""
    ctx.obj = Client(api_key, api_secret, base_url)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


@main.command()
@click.option("--forward-to", required=True, help="Where to POST each event, e.g. http://127.0.0.1:4000/webhook")
@click.option("--events", "types", default="", help="Only these types, e.g. payment.*,refund.* (default: all)")
@click.pass_obj
def listen(client: Client, forward_to: str, types: str) -> None:
    """Stream your events and forward each, signed, to a local URL."""
    secret = new_secret()
    signer = Webhook(secret)
    # The first line holds the secret this session signs with (scripts read it from here).
    click.echo(f"Ready! Your webhook signing secret is {secret} (Ctrl-C to quit)")
    sys.stdout.flush()
    wanted = [t.strip() for t in types.split(",") if t.strip()]
    with httpx.Client(timeout=10.0) as forward:
        for event in client.events.stream(wanted):
            body = event.data.encode()
            headers = signer.sign(event.id, int(time.time()), body)
            try:
                status = str(forward.post(forward_to, content=body, headers=headers).status_code)
            except httpx.HTTPError as exc:
                status = f"error ({type(exc).__name__})"
            console.print(f"{_now()}  --> {event.type} [{event.id}]  <-- [{status}] POST {forward_to}")
            sys.stdout.flush()


def _paid(client: Client, vpa: str = "success@upi") -> tuple[dict, dict]:
    order = client.orders.create(50000, receipt="paygate-trigger")
    payment = client.payments.create(order_id=order["id"], method="upi", vpa=vpa)
    return order, payment


def _final(client: Client, vpa: str = "success@upi") -> tuple[dict, dict]:
    order, payment = _paid(client, vpa)
    return order, client.payments.wait(payment["id"])


def _captured(client: Client) -> dict:
    order, payment = _final(client)
    return {"order": order["id"], "payment": client.payments.capture(payment["id"])["id"]}


def _refunded(client: Client) -> dict:
    order, payment = _final(client)
    refund = client.refunds.create(payment["id"], 100, reason="paygate trigger")
    return {"order": order["id"], "payment": payment["id"], "refund": refund["id"]}


def _ids(*objects: dict) -> dict:
    return {obj["id"].split("_", 1)[0]: obj["id"] for obj in objects}


TRIGGERS: dict[str, Callable[[Client], dict]] = {
    "payment.created": lambda c: _ids(*_paid(c)),
    "payment.pending": lambda c: _ids(*_paid(c)),
    "payment.success": lambda c: _ids(*_final(c)),
    "payment.failed": lambda c: _ids(*_final(c, "failure@upi")),
    "payment.captured": _captured,
    "order.paid": lambda c: _ids(*_final(c)),
    "refund.created": _refunded,
    "refund.processed": _refunded,
}


@main.command()
@click.argument("event_type", type=click.Choice(sorted(TRIGGERS)))
@click.pass_obj
def trigger(client: Client, event_type: str) -> None:
    """Create the real objects (order, payment, refund) whose changes emit EVENT_TYPE."""
    try:
        created = TRIGGERS[event_type](client)
    except PaygateError as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(f"Triggered {event_type}")
    for kind, object_id in created.items():
        console.print(f"  {kind}: {object_id}")


@main.group()
def events() -> None:
    """List stored events and send them again."""


@events.command("list")
@click.option("--type", "type_", help="An event type or a wildcard such as payment.*")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100))
@click.pass_obj
def list_events(client: Client, type_: str | None, limit: int) -> None:
    """List your newest events."""
    try:
        page = client.events.list(type_, limit=limit)
    except APIError as exc:
        raise click.ClickException(str(exc)) from exc
    table = Table("id", "type", "created_at")
    for event in page:
        table.add_row(event["id"], event["type"], event["created_at"])
    console.print(table)


@events.command("resend")
@click.argument("event_id")
@click.option("--endpoint-id", help="Only to this endpoint (default: every enabled endpoint subscribed to it)")
@click.pass_obj
def resend(client: Client, event_id: str, endpoint_id: str | None) -> None:
    """Deliver an event again."""
    try:
        answer = client.events.resend(event_id, endpoint_id)
    except APIError as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(f"Resent {answer['event_id']}: deliveries {', '.join(answer['deliveries'])}")


if __name__ == "__main__":
    main()

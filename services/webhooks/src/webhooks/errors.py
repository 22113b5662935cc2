"""Errors of the webhooks service."""

from __future__ import annotations

from gateway_common.errors import BadRequestError, NotFoundError


class InvalidWebhookUrlError(BadRequestError):
    description = "webhook_url must be an http(s) URL with a host, at most 2048 characters"


class WebhookUrlNotConfiguredError(BadRequestError):
    description = "No webhook URL is configured; set one with PUT /webhooks/config"


class DeliveryNotFoundError(NotFoundError):
    description = "Webhook log not found"

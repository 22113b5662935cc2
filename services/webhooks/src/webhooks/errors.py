"""Errors of the webhooks service."""

from __future__ import annotations

from gateway_common.errors import BadRequestError, NotFoundError


class InvalidWebhookUrlError(BadRequestError):
    description = "webhook_url must be an http(s) URL with a host, at most 2048 characters"


class WebhookUrlNotConfiguredError(BadRequestError):
    description = "No webhook URL is configured; set one with PUT /webhooks/config"


class DeliveryNotFoundError(NotFoundError):
    description = "Webhook log not found"


class EventNotFoundError(NotFoundError):
    description = "Event not found"


class EndpointNotFoundError(NotFoundError):
    description = "Webhook endpoint not found"


class TooManyEndpointsError(BadRequestError):
    description = "A merchant has at most 16 webhook endpoints"


class NoEndpointToResendError(BadRequestError):
    description = "No enabled webhook endpoint is subscribed to this event"


class EventNotInFormatError(BadRequestError):
    description = "The webhook endpoint's format has no such event (Razorpay's format has no payment.created)"


class EndpointDisabledError(BadRequestError):
    description = "The webhook endpoint is disabled; enable it first"


class DefaultEndpointSecretError(BadRequestError):
    description = "The default endpoint's secret is replaced with POST /webhooks/regenerate-secret"

"""Pages and form actions of the dashboard (thin: call the gateway API, render).

One blueprint, ``main``, for every page; importing each page module registers its routes on it.
"""

from dashboard.views import docs, events, overview, payments, sessions, webhooks
from dashboard.views.common import bp

__all__ = ["bp", "docs", "events", "overview", "payments", "sessions", "webhooks"]

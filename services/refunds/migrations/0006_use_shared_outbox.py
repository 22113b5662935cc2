"""Take the outbox, its relay place and the Idempotency-Key store from the shared library's template.

The tables exist (0001, 0004-0005); this brings them to the one definition every service shares:
the outbox loses the UNIQUE index on event_id that payments dropped in its 0004 (consumers are
idempotent by event id), and the idempotency pruner gets its index.
"""

from gateway_common.migrations import use_template

use_template("outbox_idempotency", "refunds")

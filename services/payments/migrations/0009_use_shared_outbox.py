"""Take the outbox, its relay place and the Idempotency-Key store from the shared library's template.

The tables exist (0001, 0004-0006); this brings them to the one definition every service shares
(the index the idempotency pruner uses is new) and records that payments follows it from here on.
"""

from gateway_common.migrations import use_template

use_template("outbox_idempotency", "payments")

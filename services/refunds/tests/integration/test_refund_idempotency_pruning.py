"""Expired Idempotency-Keys of the refunds service are forgotten by its worker, like payments'."""

from __future__ import annotations


def test_expired_refund_keys_are_pruned_by_the_workers_loop(admin, settings):
    from refunds import worker

    with admin.cursor() as cur:
        cur.execute(
            "INSERT INTO refunds.idempotency_keys (scope, key, fingerprint, expires_at) "
            "SELECT 'prune-test', 'old' || g, 'f', now() - interval '1 minute' FROM generate_series(1, 2500) g "
            "UNION ALL SELECT 'prune-test', 'fresh', 'f', now() + interval '1 hour'"
        )
    (pruner,) = [loop for loop in worker.make_loops() if loop.name == "refunds-idempotency-pruner"]
    steps = 0
    while pruner.step():
        steps += 1
    assert steps == 3  # bounded batches of 1000
    with admin.cursor() as cur:
        cur.execute("SELECT key FROM refunds.idempotency_keys WHERE scope = 'prune-test'")
        assert [row["key"] for row in cur.fetchall()] == ["fresh"]

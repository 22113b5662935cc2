"""Inputs fuzzers like: NUL characters, non-finite numbers, odd ids, deep nesting: 4xx, never 5xx."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/orders", {"amount": 100, "receipt": "a\x00b"}),
        ("/api/v1/orders", {"amount": 100, "notes": {"k\x00": "v"}}),
        ("/api/v1/orders", {"amount": 100, "notes": {"k": "v\x00"}}),
        ("/api/v1/payments", {"amount": 100, "method": "upi", "vpa": "a\x00@b"}),
        ("/api/v1/payments", {"amount": 100, "method": "upi", "vpa": "a@b", "order_id": "ref\x00"}),
        ("/api/v1/payments", {"amount": 100, "method": "card", "card": {"number": "4111\x001111", "cvv": "123"}}),
        ("/api/v1/payments/public", {"order_id": "order_x", "method": "upi", "vpa": "a@b", "key": "k\x00"}),
    ],
)
def test_nul_characters_are_rejected(client, headers, path, body):
    response = client.post(path, json=body, headers=headers)
    assert 400 <= response.status_code < 500, response.get_json()
    assert "error" in response.get_json()


def test_non_finite_numbers_in_notes_are_rejected(client, headers):
    response = client.post(
        "/api/v1/orders",
        data='{"amount": 100, "notes": {"k": NaN}}',
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/orders/%00",
        "/api/v1/orders/order_%00%00",
        "/api/v1/orders/" + "x" * 5000,
        "/api/v1/orders/%00/public",
        "/api/v1/payments/%00",
        "/api/v1/payments/%00/public",
        "/api/v1/payments?q=%00",
        "/api/v1/payments?limit=99999999999999999999",
        "/api/v1/payments/stats?days=1e9",
    ],
)
def test_odd_paths_and_queries_are_4xx(client, headers, path):
    response = client.get(path, headers=headers)
    assert 400 <= response.status_code < 500, (path, response.get_json())


def test_capture_of_odd_ids_is_404(client, headers):
    assert client.post("/api/v1/payments/%00/capture", headers=headers).status_code == 404

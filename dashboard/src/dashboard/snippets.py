"""Code snippets of the integration docs, filled in for the logged-in merchant."""

from __future__ import annotations

from string import Template

CREATE_ORDER_CURL = Template("""\
curl -X POST $api/orders \\
  -H "X-Api-Key: $api_key" \\
  -H "X-Api-Secret: $api_secret" \\
  -H "Content-Type: application/json" \\
  -H "Idempotency-Key: order-receipt-1001" \\
  -d '{"amount": 50000, "currency": "INR", "receipt": "receipt_1001", "notes": {"customer": "42"}}'

# 201 Created
# {"id": "order_...", "amount": 50000, "currency": "INR", "status": "created", ...}""")

CREATE_ORDER_PYTHON = Template("""\
import os

import requests

API = "$api"
AUTH = {
    "X-Api-Key": os.environ.get("GATEWAY_KEY_ID", "$api_key"),
    "X-Api-Secret": os.environ.get("GATEWAY_KEY_SECRET", "$api_secret"),
}

response = requests.post(
    f"{API}/orders",
    json={"amount": 50000, "currency": "INR", "receipt": "receipt_1001"},
    headers={**AUTH, "Idempotency-Key": "order-receipt-1001"},
    timeout=10,
)
response.raise_for_status()
order = response.json()
print(order["id"], order["status"])  # order_... created""")

SDK = Template("""\
<button id="pay">Pay ₹500.00</button>

<script src="$checkout/checkout.js"></script>
<script>
  document.getElementById('pay').addEventListener('click', () => {
    const checkout = new PaymentGateway({
      key: '$api_key',
      orderId: 'order_xxxxxxxxxxxxxxxx',   // created on your server (see above)
      onSuccess: (response) => {
        // Confirm on your server: GET /api/v1/payments/{paymentId} or wait for the webhook.
        console.log('paid', response.paymentId);
      },
      onFailure: (error) => console.log('failed', error.errorCode, error.errorDescription),
      onClose: () => console.log('checkout closed'),
    });
    checkout.open();
  });
</script>""")

WEBHOOK_PYTHON = """\
import hashlib
import hmac
import os
import time

WEBHOOK_SECRET = os.environ["WEBHOOK_SECRET"]  # whsec_... from Dashboard > Webhooks
TOLERANCE_SECONDS = 300


def verify_signature(body: bytes, signature: str, secret: str = WEBHOOK_SECRET) -> bool:
    \"\"\"Check X-Webhook-Signature: hex HMAC-SHA256 of the raw body.\"\"\"
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature or "")


def verify_signature_v2(body: bytes, header: str, secret: str = WEBHOOK_SECRET,
                        tolerance: int = TOLERANCE_SECONDS) -> bool:
    \"\"\"Check X-Webhook-Signature-V2 (t=<unix>,v1=<hex>) and reject replays.\"\"\"
    try:
        fields = dict(part.split("=", 1) for part in (header or "").split(","))
        timestamp = int(fields["t"])
        given = fields["v1"]
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    signed = str(timestamp).encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


# Flask receiver: verify the raw bytes BEFORE parsing JSON.
from flask import Flask, abort, request

app = Flask(__name__)


@app.post("/webhook")
def webhook():
    body = request.get_data()
    if not verify_signature_v2(body, request.headers.get("X-Webhook-Signature-V2", "")):
        abort(400)
    event = request.get_json()
    if event["event"] == "payment.success":
        payment = event["data"]["payment"]
        print("paid", payment["id"], payment["amount"])
    # Deliveries are at-least-once: de-duplicate on event["id"].
    return "", 200"""

WEBHOOK_NODE = """\
const crypto = require('crypto');
const express = require('express');

const WEBHOOK_SECRET = process.env.WEBHOOK_SECRET; // whsec_... from Dashboard > Webhooks
const TOLERANCE_SECONDS = 300;

function safeEqual(expected, given) {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(given || '', 'utf8');
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

// X-Webhook-Signature: hex HMAC-SHA256 of the raw body.
function verifySignature(rawBody, signature, secret = WEBHOOK_SECRET) {
  const expected = crypto.createHmac('sha256', secret).update(rawBody).digest('hex');
  return safeEqual(expected, signature);
}

// X-Webhook-Signature-V2: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">.
function verifySignatureV2(rawBody, header, secret = WEBHOOK_SECRET, tolerance = TOLERANCE_SECONDS) {
  const fields = {};
  for (const part of (header || '').split(',')) {
    const i = part.indexOf('=');
    if (i > 0) fields[part.slice(0, i)] = part.slice(i + 1);
  }
  const t = Number.parseInt(fields.t, 10);
  if (!Number.isFinite(t) || !fields.v1) return false;
  if (Math.abs(Date.now() / 1000 - t) > tolerance) return false;
  const expected = crypto.createHmac('sha256', secret)
    .update(`${t}.`).update(rawBody).digest('hex');
  return safeEqual(expected, fields.v1);
}

const app = express();
// express.raw keeps the exact bytes that were signed.
app.post('/webhook', express.raw({ type: 'application/json' }), (req, res) => {
  if (!verifySignatureV2(req.body, req.get('X-Webhook-Signature-V2'))) {
    return res.sendStatus(400);
  }
  const event = JSON.parse(req.body.toString('utf8'));
  console.log(event.event, event.id); // at-least-once: de-duplicate on event.id
  res.sendStatus(200);
});
app.listen(4000);"""


def render(api: str, checkout: str, api_key: str, api_secret: str) -> dict[str, str]:
    """Return every snippet with the merchant's URLs and key filled in."""
    values = {"api": api, "checkout": checkout, "api_key": api_key, "api_secret": api_secret}
    return {
        "create_order_curl": CREATE_ORDER_CURL.substitute(values),
        "create_order_python": CREATE_ORDER_PYTHON.substitute(values),
        "sdk": SDK.substitute(values),
        "webhook_python": WEBHOOK_PYTHON,
        "webhook_node": WEBHOOK_NODE,
    }


# The gateway's test instruments and per-request controls (API.md "Test controls"), as the docs
# page lists them. The dashboard is a client of the API and imports no service, so this is a copy:
# tests/browser/test_dashboard.py checks it against the payments service's bank tables.
TEST_INSTRUMENTS = (
    # (method, instrument, outcome, error_code, error_description)
    ("UPI", "success@upi", "success", None, None),
    ("UPI", "success@razorpay", "success", None, None),
    ("UPI", "failure@upi", "failed", "PAYMENT_FAILED", "The bank could not process the payment"),
    ("UPI", "failure@razorpay", "failed", "PAYMENT_FAILED", "The bank could not process the payment"),
    ("Card", "4111111111111111", "success (test mode)", None, None),
    ("Card", "4000000000000002", "failed", "CARD_DECLINED", "The card was declined by the bank"),
    ("Card", "4000000000009995", "failed", "INSUFFICIENT_FUNDS", "Insufficient funds in the account"),
    ("Card", "4000000000000069", "failed", "EXPIRED_CARD", "The card has expired"),
    ("Card", "4000000000000127", "failed", "INCORRECT_CVC", "The card's security code (CVV) is incorrect"),
    (
        "Card",
        "4000000000000119",
        "failed",
        "PROCESSING_ERROR",
        "An error occurred while the bank processed the card; try again",
    ),
    (
        "Card",
        "4000000000003220",
        "3-D Secure: waits for the OTP on the checkout's bank page; 1234 succeeds",
        "AUTHENTICATION_FAILED, AUTHENTICATION_CANCELLED, AUTHENTICATION_TIMEOUT",
        "Any other OTP, Cancel, or no answer within 15 minutes fails the payment",
    ),
)
TEST_CONTROLS = (
    # (header, applies to, values, effect)
    (
        "X-Test-Outcome",
        "POST /payments, POST /payments/public",
        "success | failed | failed:<ERROR_CODE>",
        "The bank answers this payment so, whatever the instrument.",
    ),
    (
        "X-Test-Delay-Ms",
        "POST /payments, POST /payments/public, POST /payments/{id}/refunds",
        "0 … 86400000",
        "The bank (or refund processor) answers after this many milliseconds (refused for the 3-D Secure card: "
        "its shopper decides when).",
    ),
)

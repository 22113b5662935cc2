"""HTTP routes of the auth service (thin: parse, call service, dump)."""

from __future__ import annotations

import base64

from flask import Response, current_app, request
from flask.views import MethodView
from gateway_common.errors import AuthenticationError, NotFoundError
from gateway_common.http import (
    MERCHANT_HEADER,
    Blueprint,
    current_merchant,
    require_gateway,
    require_test_controls,
    require_test_mode,
)
from gateway_common.schemas import ErrorEnvelopeSchema
from gateway_common.timeutil import iso

from auth import models, service
from auth.models import TestClock
from auth.schemas import (
    AdvanceClockRequest,
    LoginRequest,
    LoginResponse,
    LogoutResponse,
    MerchantProfile,
    RotatedKeys,
    TestClockSchema,
    TestMerchant,
)

blp = Blueprint("auth", __name__, url_prefix="/api/v1", description="Dashboard sessions, merchant profile, API keys")
internal = Blueprint("internal", __name__, url_prefix="/internal", description="Called by nginx auth_request only")
# Every auth route, login included, answers only calls that came through the gateway; checked
# before the body is parsed, so a direct caller learns nothing but "no".
blp.before_request(require_gateway)
internal.before_request(require_gateway)


@internal.after_request
def _vary_on_credentials(response: Response) -> Response:
    # nginx caches verdicts under the API key alone and tells secrets and tokens apart by this
    # header, so that no secret is written into its cache files (see the nginx template).
    response.headers["Vary"] = "X-Api-Secret, Authorization"
    return response


def _db():
    return current_app.extensions["db"]


def bearer_token() -> str:
    """Return the bearer token of the request, or an empty string."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def basic_credentials() -> tuple[str, str] | None:
    """Return the key id and secret of an HTTP Basic ``Authorization`` header (Razorpay's API), else None."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return "", ""
    key_id, _, key_secret = decoded.partition(":")
    return key_id, key_secret


@internal.route("/verify", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
@internal.doc(hide=True)
def verify() -> Response:
    """Verify API key and secret (headers or HTTP Basic), or a session token, for nginx."""
    require_gateway()
    api_key = request.headers.get("X-Api-Key", "")
    api_secret = request.headers.get("X-Api-Secret", "")
    token = bearer_token()
    basic = basic_credentials()
    if api_key or api_secret:
        merchant = service.verify_api_key(_db(), api_key, api_secret)
    elif basic is not None:
        merchant = service.verify_api_key(_db(), *basic)
    elif token:
        merchant = service.verify_session(_db(), token)
    else:
        raise AuthenticationError("Missing credentials: send X-Api-Key and X-Api-Secret")
    response = Response(status=200)
    response.headers[MERCHANT_HEADER] = merchant
    return response


@blp.route("/auth/login")
class Login(MethodView):
    @blp.arguments(LoginRequest)
    @blp.response(200, LoginResponse)
    @blp.alt_response(401, schema=ErrorEnvelopeSchema, description="Wrong email or password")
    @blp.alt_response(429, schema=ErrorEnvelopeSchema, description="Too many failed logins for this account (Retry-After)")
    def post(self, body: dict) -> dict:
        """Log in to the dashboard with email and password."""
        session = service.login(_db(), body["email"], body["password"], current_app.extensions["login_throttle"])
        return {
            "token": session.token,
            "merchant": {"id": session.merchant.id, "name": session.merchant.name, "email": session.merchant.email},
            "expires_at": iso(session.expires_at),
        }


@blp.route("/auth/logout")
class Logout(MethodView):
    @blp.response(200, LogoutResponse)
    def post(self) -> dict:
        """Revoke the bearer session token of this request."""
        current_merchant()
        token = bearer_token()
        if token:
            service.logout(_db(), token)
        return {"message": "Logged out"}


@blp.route("/merchant")
class Profile(MethodView):
    @blp.response(200, MerchantProfile)
    def get(self) -> dict:
        """Return the calling merchant with its API key (the secret only as a hint)."""
        merchant, api_key, hint = service.get_merchant(_db(), current_merchant())
        return {"id": merchant.id, "name": merchant.name, "email": merchant.email, "api_key": api_key, "api_secret_hint": hint}


@blp.route("/merchant/rotate-keys")
class RotateKeys(MethodView):
    @blp.response(200, RotatedKeys)
    def post(self) -> dict:
        """Revoke the merchant's API keys and issue new ones (the secret is shown once)."""
        api_key, api_secret = service.rotate_api_key(_db(), current_app.extensions["secret_box"], current_merchant())
        return {"api_key": api_key, "api_secret": api_secret}


@blp.route("/test/merchant")
class TestMerchantView(MethodView):
    @blp.response(200, TestMerchant)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Not in test mode")
    def get(self) -> dict:
        """Return the seeded test merchant."""
        require_test_mode()
        try:
            merchant, _, _ = service.get_merchant(_db(), models.TEST_MERCHANT_ID)
        except AuthenticationError as exc:
            raise NotFoundError("Test merchant is not seeded; run make migrate") from exc
        return {"id": merchant.id, "email": merchant.email, "api_key": models.TEST_API_KEY, "seeded": True}


def _clock_merchant() -> str:
    """The calling merchant of a test-clock route; 400 ``Test controls are off`` outside test mode."""
    merchant = current_merchant()
    require_test_controls(current_app.extensions["gateway_settings"].test_mode)
    return merchant


_CONTROLS_OFF = "Test controls are off (not in test mode), or bad input"


@blp.route("/test/clock")
class TestClockView(MethodView):
    @blp.response(200, TestClockSchema)
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description=_CONTROLS_OFF)
    def get(self) -> TestClock:
        """Read the merchant's test clock (test mode only)."""
        return service.get_clock(_db(), _clock_merchant())


@blp.route("/test/clock/advance")
class AdvanceTestClock(MethodView):
    @blp.arguments(AdvanceClockRequest)
    @blp.response(200, TestClockSchema)
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description=_CONTROLS_OFF)
    def post(self, body: dict) -> TestClock:
        """Move the merchant's test clock ahead: its scheduled work (bank answers, refunds, authentication
        timeouts, webhook retries, endpoint disabling) comes due that much sooner. Two advances add up."""
        return service.advance_clock(_db(), _clock_merchant(), body["seconds"])


@blp.route("/test/clock/reset")
class ResetTestClock(MethodView):
    @blp.response(200, TestClockSchema)
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description=_CONTROLS_OFF)
    def post(self) -> TestClock:
        """Put the merchant's test clock back on real time (offset 0)."""
        return service.reset_clock(_db(), _clock_merchant())

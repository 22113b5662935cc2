"""The safe JSON loader, how the app factory installs it, and gunicorn's error pages: no I/O."""

from __future__ import annotations

import json
import socket

import flask_smorest
import marshmallow as ma
import pytest
from gateway_common import jsonsafe, serving
from gateway_common.config import Settings
from gateway_common.errors import BadRequestError
from gateway_common.http import Blueprint, create_base_app
from gateway_common.idempotency import fingerprint

HOSTILE = {
    "deep array": "[" * 100_000 + "]" * 100_000,
    "deep object": '{"a":' * 100_000 + "1" + "}" * 100_000,
    "33 levels": "[" * 33 + "]" * 33,
    "deep inside a wide document": '{"a": [1, 2, 3], "b": ' + "[" * 40 + "]" * 40 + "}",
    "5000-digit int": "9" * 5000,
    "5000-digit int as a value": '{"amount": ' + "9" * 5000 + "}",
    "101-digit int": "1" * 101,
    "long float": "1." + "1" * 200,
    "huge exponent": "1e999999",
    "negative infinity": "-1e400",
    "NaN": '{"a": NaN}',
    "Infinity": "Infinity",
    "lone high surrogate": '"\\ud800"',
    "lone low surrogate": '"\\udc00"',
    "uppercase escape": '"\\uDBFF"',
    "reversed pair": '"\\udc00\\ud800"',
    "surrogate in a value": '{"vpa": "ok\\udfffok@upi"}',
    "surrogate in a key": '{"\\ud800": 1}',
    "surrogate in a nested key": '{"notes": {"\\udc00": "v"}}',
    "surrogate in a list": '[["x", "\\ud800"]]',
}


@pytest.mark.parametrize("name", list(HOSTILE))
@pytest.mark.parametrize("as_bytes", [False, True])
def test_hostile_documents_raise_a_value_error_that_names_the_reason(name, as_bytes):
    raw = HOSTILE[name]
    with pytest.raises(jsonsafe.UnsafeJSONError) as caught:
        jsonsafe.loads(raw.encode() if as_bytes else raw)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, json.JSONDecodeError)
    assert caught.value.doc  # non-empty: webargs reads an empty doc as "no body"
    assert str(caught.value) == caught.value.reason
    assert any(word in caught.value.reason for word in ("nested", "number", "surrogate", "JSON number"))


def test_raw_surrogates_and_invalid_utf8_are_refused():
    with pytest.raises(jsonsafe.UnsafeJSONError):
        jsonsafe.loads('"\ud800"')  # a str that already holds one
    for raw in (b'"\xed\xa0\x80"', b'"\xff"', b'{"a": "\xc0\xaf"}'):
        with pytest.raises(jsonsafe.UnsafeJSONError, match="not UTF-8"):
            jsonsafe.loads(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"amount": 50000, "notes": {"k": "v", "n": 1.5, "b": true, "z": null}}', None),
        ('"\\ud83d\\ude00"', "\U0001f600"),  # a proper pair is an ordinary character
        ('{"\\ud83d\\ude00": "\\u00e9"}', {"\U0001f600": "é"}),
        ('"a\\\\ud800"', "a\\ud800"),  # an escaped backslash, not a surrogate
        ("[" * 32 + "]" * 32, None),
        ("[" + ",".join(["[1]"] * 1000) + "]", None),  # wide, not deep
        ("9" * 100, int("9" * 100)),
        ("-12.5e3", -12500.0),
    ],
)
def test_ordinary_documents_load_as_json_loads_does(raw, expected):
    assert jsonsafe.loads(raw) == (json.loads(raw) if expected is None else expected)
    assert jsonsafe.loads(raw.encode()) == jsonsafe.loads(raw)


def test_malformed_json_keeps_the_standard_error():
    for raw in ("", "{oops", '{"a": 1', "\ufeff{}"):
        with pytest.raises(json.JSONDecodeError) as caught:
            jsonsafe.loads(raw)
        assert not isinstance(caught.value, jsonsafe.UnsafeJSONError)


class _Body(ma.Schema):
    amount = ma.fields.Integer()
    notes = ma.fields.Dict()


def _app():
    app, api = create_base_app(Settings.from_env("unit"), title="unit")
    blp = Blueprint("unit", __name__)

    @blp.route("/webargs", methods=["POST"])
    @blp.arguments(_Body())
    def parsed(body: dict) -> dict:
        return body

    @blp.route("/get_json", methods=["POST"])
    def raw() -> dict:
        from flask import request

        return {"body": request.get_json()}

    api.register_blueprint(blp)
    return app


@pytest.mark.parametrize("path", ["/webargs", "/get_json"])
@pytest.mark.parametrize("name", ["deep array", "5000-digit int as a value", "surrogate in a nested key", "NaN"])
def test_the_app_answers_hostile_bodies_with_a_400_that_says_why(path, name):
    response = _app().test_client().post(path, data=HOSTILE[name], content_type="application/json")
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "BAD_REQUEST_ERROR"
    assert error["description"].startswith("Request body is not valid JSON: ")


@pytest.mark.parametrize("path", ["/webargs", "/get_json"])
def test_the_app_still_loads_ordinary_bodies(path):
    response = _app().test_client().post(path, json={"amount": 100, "notes": {"\U0001f600": "é"}})
    assert response.status_code == 200
    body = response.get_json()
    assert (body if path == "/webargs" else body["body"]) == {"amount": 100, "notes": {"\U0001f600": "é"}}


def test_a_blueprint_that_would_bypass_the_safe_loader_is_refused_at_start_up():
    _, api = create_base_app(Settings.from_env("unit"), title="unit")
    with pytest.raises(TypeError, match=r"gateway_common\.http\.Blueprint"):
        api.register_blueprint(flask_smorest.Blueprint("plain", __name__))


def test_idempotency_fingerprint_refuses_a_hostile_body_before_anything_is_stored():
    with pytest.raises(BadRequestError, match="nested deeper"):
        fingerprint("k", "POST", "/api/v1/orders", HOSTILE["deep array"].encode())
    # Ordinary malformed JSON is still fingerprinted, keyed, as raw bytes (the view answers its 400).
    assert fingerprint("k", "POST", "/api/v1/orders", b"{oops") != fingerprint("k", "POST", "/api/v1/orders", b"{oops!")


@pytest.mark.parametrize(("status", "reason"), [(400, "Bad Request"), (414, "URI Too Long"), (431, "Request Header Fields Too Large"), (500, "Internal Server Error")])
def test_gunicorn_error_pages_are_json_envelopes(status, reason):
    from gunicorn import util

    original = util.write_error
    serving.json_error_pages()
    left, right = socket.socketpair()
    try:
        util.write_error(left, status, reason, "Invalid Request Line '<script>'")
        raw = right.recv(65536)
    finally:
        util.write_error = original
        left.close()
        right.close()
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(f"HTTP/1.1 {status} {reason}\r\n".encode())
    assert b"Content-Type: application/json" in head
    assert f"Content-Length: {len(body)}".encode() in head
    error = json.loads(body)["error"]
    assert error["code"] == ("SERVER_ERROR" if status == 500 else "BAD_REQUEST_ERROR")
    assert "<script>" not in error["description"]

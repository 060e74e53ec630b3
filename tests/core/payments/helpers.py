"""Build genuine notifications the way each provider does, with keys made here and now."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from meterpay.core.payments import alipay, wechat

NOW = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
API_V3_KEY = b"0123456789abcdefghijABCDEFGHIJ01"  # 32 ASCII bytes, as in the merchant console


@cache
def rsa_key(name: str) -> rsa.RSAPrivateKey:
    """One 2048-bit key per name, made once per test session."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def platform_certificate(name: str) -> bytes:
    """A self-signed certificate standing in for a WeChat Pay platform certificate."""
    key = rsa_key(name)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Tenpay.com {name}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.PEM)


def public_key_pem(name: str) -> bytes:
    return rsa_key(name).public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def rsa_sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


# --- WeChat Pay v3 ----------------------------------------------------------------------


def wechat_transaction(**overrides: Any) -> dict[str, Any]:
    transaction: dict[str, Any] = {
        "appid": "wxd678efh567hg6787",
        "mchid": "1230000109",
        "out_trade_no": "MP20250301-0001",
        "transaction_id": "4200002512202503011234567890",
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": "2025-03-01T18:00:05+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": 5000, "payer_total": 5000, "currency": "CNY", "payer_currency": "CNY"},
    }
    transaction.update(overrides)
    return transaction


def encrypt_resource(
    plaintext: bytes,
    *,
    key: bytes = API_V3_KEY,
    nonce: str = "fdasflkja484",
    aad: str = "transaction",
) -> dict[str, str]:
    ciphertext = AESGCM(key).encrypt(nonce.encode(), plaintext, aad.encode())
    return {
        "original_type": "transaction",
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "associated_data": aad,
        "nonce": nonce,
    }


def wechat_body(resource: dict[str, str], event_type: str = "TRANSACTION.SUCCESS") -> bytes:
    envelope = {
        "id": "EV-2018022511223320873",
        "create_time": "2025-03-01T18:00:06+08:00",
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "支付成功",
        "resource": resource,
    }
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()


def wechat_headers(
    body: bytes,
    *,
    serial: str,
    key: rsa.RSAPrivateKey,
    timestamp: int | None = None,
    nonce: str = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
) -> dict[str, str]:
    ts = str(int(NOW.timestamp()) if timestamp is None else timestamp)
    message = wechat.signing_message(timestamp=ts, nonce=nonce, body=body)
    return {
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature": rsa_sign(key, message),
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }


def genuine_wechat(**overrides: Any) -> tuple[dict[str, str], bytes, str]:
    """Headers, body and the platform serial of a genuine payment notification."""
    serial, _ = wechat.load_platform_certificate(pem=platform_certificate("wechat"))
    plaintext = json.dumps(wechat_transaction(**overrides)).encode()
    body = wechat_body(encrypt_resource(plaintext))
    return wechat_headers(body, serial=serial, key=rsa_key("wechat")), body, serial


# --- Alipay -----------------------------------------------------------------------------


def alipay_params(**overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "notify_time": "2025-03-01 18:00:07",
        "notify_type": "trade_status_sync",
        "notify_id": "ac05099524730693a8b330c5ecf72da9786",
        "app_id": "2015102700040153",
        "charset": "utf-8",
        "version": "1.0",
        "trade_no": "2025030122001400111234567890",
        "out_trade_no": "MP20250301-0002",
        "buyer_id": "2088102122524333",
        "seller_id": "2088101106499364",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "12.34",
        "receipt_amount": "12.34",
        "buyer_pay_amount": "12.34",
        "subject": "电费充值 房间 101",
        "gmt_create": "2025-03-01 18:00:01",
        "gmt_payment": "2025-03-01 18:00:05",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def sign_alipay(
    params: dict[str, str], *, key: rsa.RSAPrivateKey | None = None, encoding: str = "utf-8"
) -> dict[str, str]:
    """Sign as Alipay does: sorted non-empty params without sign/sign_type, SHA256withRSA."""
    message = alipay.signing_string(params=params).encode(encoding)
    return {**params, "sign_type": "RSA2", "sign": rsa_sign(key or rsa_key("alipay"), message)}


def alipay_form(params: dict[str, str], *, encoding: str = "utf-8") -> bytes:
    return urlencode(params, encoding=encoding).encode("ascii")

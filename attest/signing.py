"""Signed bundles: each manifest sealed as an in-toto Statement (v1) in a DSSE envelope.

``attestation.dsse.json`` sits beside ``manifest.json`` (it is not listed in the manifest, which
it signs). The Statement's subject is ``manifest.json`` with its sha256; its predicate carries
the scan id, the times, the tool version, the previous manifest's sha256 and the result counts.

Keys come from the config's ``signing:`` section: an AWS KMS key (recommended: the private key
never leaves KMS) or a local PEM file (Ed25519 or ECDSA P-256). DSSE and the signers are
securesystemslib's; keys are loaded with ``cryptography``. Nothing here is hand-rolled crypto.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from attest.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from attest.results import Results

ATTESTATION = "attestation.dsse.json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://attest.invalid/predicate/bundle-seal/v1"
SUBJECT = "manifest.json"
KMS_RAW_LIMIT = 4096  # KMS signs a RAW message up to 4 KB itself; longer ones are sent as a digest
_KMS_ARN = re.compile(r"^arn:aws[a-z-]*:kms:([a-z0-9-]+):\d{12}:(key|alias)/.+$")


class SigningConfig(BaseModel):
    """The ``signing:`` config section: exactly one of ``kms_key_id`` or ``private_key_path``."""
    model_config = ConfigDict(extra="forbid")
    kms_key_id: str | None = Field(None, description="an AWS KMS key ARN (ECC_NIST_P256 or RSA, "
                                                     "SIGN_VERIFY); the key never leaves KMS")
    region: str | None = Field(None, description="the KMS key's region when kms_key_id is not an ARN")
    private_key_path: str | None = Field(None, description="a PEM file: Ed25519 or ECDSA P-256")
    private_key_password: SecretStr | None = None

    @model_validator(mode="after")
    def _one_key(self) -> "SigningConfig":
        if bool(self.kms_key_id) == bool(self.private_key_path):
            raise ValueError("give exactly one of kms_key_id or private_key_path")
        return self

    @property
    def kms_region(self) -> str | None:
        m = _KMS_ARN.match(self.kms_key_id or "")
        return m.group(1) if m else self.region


@dataclass
class LoadedSigner:
    signer: Any        # a securesystemslib Signer
    key: Any           # its securesystemslib public Key
    description: str   # e.g. "AWS KMS key arn:..." or "local key /secrets/x.pem (ed25519)"

    @property
    def public_pem(self) -> str:
        return public_key_pem(self.key)


def _kms_signer_class() -> type:
    from securesystemslib.signer import AWSSigner

    class KmsSigner(AWSSigner):
        """securesystemslib's AWS KMS signer, on a client built with attest's AWS rules
        (credentials, region, ``endpoint_url``). Statements are small, so they go to KMS as RAW
        messages (KMS hashes them itself); only a message over 4 KB is sent as a local digest."""

        def __init__(self, key_id: str, public_key: Any, client: Any) -> None:  # noqa: D401
            self.aws_key_id = key_id
            self._public_key = public_key
            self.client = client
            self.aws_algo = self.aws_algos[public_key.scheme]

        def sign(self, payload: bytes) -> Any:
            if len(payload) > KMS_RAW_LIMIT:
                return super().sign(payload)
            from securesystemslib.signer import Signature
            answer = self.client.sign(KeyId=self.aws_key_id, Message=payload, MessageType="RAW",
                                      SigningAlgorithm=self.aws_algo)
            return Signature(self.public_key.keyid, answer["Signature"].hex())

    return KmsSigner


def kms_client(config: SigningConfig, endpoint_url: str | None, session: Any = None) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig
    session = session or boto3.Session()
    region = config.kms_region or session.region_name
    if not region:
        raise ConfigError("cannot tell the KMS key's region: give the key ARN or signing.region",
                          key="signing.kms_key_id")
    return session.client("kms", region_name=region, endpoint_url=endpoint_url,
                          config=BotoConfig(retries={"mode": "standard", "max_attempts": 5},
                                            connect_timeout=10, read_timeout=30))


def load_signer(config: SigningConfig, *, base_dir: Path | None = None,
                endpoint_url: str | None = None, session: Any = None) -> LoadedSigner:
    """The signer the config names. ConfigError (exit 2) for a bad key file or a KMS key that
    cannot sign; the KMS call's own failure (no credentials, denied) is a ConfigError too: a
    scan must not start collecting when it could never seal its bundle."""
    if config.kms_key_id:
        return _load_kms(config, endpoint_url, session)
    return _load_local(config, base_dir)


def _load_kms(config: SigningConfig, endpoint_url: str | None, session: Any) -> LoadedSigner:
    from botocore.exceptions import BotoCoreError, ClientError
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.signer import SSlibKey
    client = kms_client(config, endpoint_url, session)
    try:
        answer = client.get_public_key(KeyId=config.kms_key_id)
    except (BotoCoreError, ClientError) as exc:
        raise ConfigError(f"cannot read the KMS key's public key (kms:GetPublicKey): {exc}",
                          key="signing.kms_key_id") from None
    algos = answer.get("SigningAlgorithms") or []
    cls = _kms_signer_class()
    scheme = cls._get_default_scheme(algos)
    if answer.get("KeyUsage", "SIGN_VERIFY") != "SIGN_VERIFY" or scheme is None:
        raise ConfigError(f"the KMS key cannot sign (key usage {answer.get('KeyUsage')}, "
                          f"algorithms {algos}); create it with --key-usage SIGN_VERIFY "
                          "--key-spec ECC_NIST_P256", key="signing.kms_key_id")
    public = serialization.load_der_public_key(answer["PublicKey"])
    key = SSlibKey.from_crypto(public, scheme=scheme)
    return LoadedSigner(cls(config.kms_key_id, key, client), key,
                        f"AWS KMS key {config.kms_key_id}")


def _load_local(config: SigningConfig, base_dir: Path | None) -> LoadedSigner:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from securesystemslib.signer import CryptoSigner
    path = Path(config.private_key_path or "").expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        raise ConfigError(f"signing key file not found: {path}", key="signing.private_key_path")
    password = (config.private_key_password.get_secret_value().encode()
                if config.private_key_password else None)
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=password)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: not a readable PEM private key ({exc})",
                          key="signing.private_key_path") from None
    if isinstance(private, ed25519.Ed25519PrivateKey):
        kind = "ed25519"
    elif isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp256r1":
        kind = "ecdsa-sha2-nistp256"
    else:
        raise ConfigError(f"{path}: expected an Ed25519 or ECDSA P-256 key", key="signing.private_key_path")
    signer = CryptoSigner(private)
    return LoadedSigner(signer, signer.public_key, f"local key {path} ({kind})")


def public_key_pem(key: Any) -> str:
    """The SubjectPublicKeyInfo PEM of a securesystemslib key (Ed25519 keys keep theirs as hex)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    value = key.keyval["public"]
    if key.keytype == "ed25519":
        public = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(value))
    else:
        public = serialization.load_pem_public_key(value.encode())
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_key(path: str | Path) -> Any:
    """A PEM public key file as a securesystemslib Key; UsageError (one line) if it is not one."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from securesystemslib.signer import SSlibKey
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p}: public key file not found")
    data = p.read_bytes()
    if b"PRIVATE KEY-----" in data:
        raise UsageError(f"{p}: a private key; give the public key (`attest keys public` prints it)")
    try:
        public = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise UsageError(f"{p}: not a PEM public key (expected a file that starts with "
                         "-----BEGIN PUBLIC KEY-----)") from None
    if isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1":
        scheme = "ecdsa-sha2-nistp256"
    elif isinstance(public, ed25519.Ed25519PublicKey):
        scheme = "ed25519"
    elif isinstance(public, rsa.RSAPublicKey):
        scheme = "rsassa-pss-sha256"
    else:
        raise UsageError(f"{p}: unsupported key type (expected Ed25519, ECDSA P-256 or RSA)")
    return SSlibKey.from_crypto(public, scheme=scheme)


def build_statement(manifest_bytes: bytes, manifest: dict[str, Any], *, bundle: str,
                    results: "Results | None") -> dict[str, Any]:
    import hashlib

    from attest.model import isoformat
    scan = results.scan if results is not None else None
    previous = manifest.get("previous") or {}
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": SUBJECT, "digest": {"sha256": hashlib.sha256(manifest_bytes).hexdigest()}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "bundle": bundle,
            "scan_id": manifest.get("scan_id"),
            "started_at": isoformat(scan.started_at) if scan else None,
            "finished_at": isoformat(scan.finished_at) if scan and scan.finished_at else None,
            "sealed_at": manifest.get("created_at"),
            "tool_version": manifest.get("tool_version"),
            "previous_bundle": previous.get("bundle"),
            "previous_manifest_sha256": previous.get("manifest_sha256"),
            "counts": ({s.value: n for s, n in results.summary.counts.items()}
                       if results is not None else {}),
            "store": manifest.get("store"),
        },
    }


def sign_statement(statement: dict[str, Any], signer: LoadedSigner) -> bytes:
    """The DSSE envelope (JSON bytes) of ``statement`` signed by ``signer``."""
    from securesystemslib.dsse import Envelope
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode("utf-8")
    envelope = Envelope(payload, PAYLOAD_TYPE, {})
    envelope.sign(signer.signer)
    return (json.dumps(envelope.to_dict(), indent=2, sort_keys=True) + "\n").encode("utf-8")


def check_attestation(bundle: Path, manifest_sha: str, key: Any | None) -> list[str]:
    """Problems with a bundle's attestation. With ``key``: it must exist and be signed by it.
    Without: a present attestation must still be about this very manifest."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError
    path = bundle / ATTESTATION
    name = bundle.name
    if not path.is_file():
        return [f"{name}: {ATTESTATION}: missing (the bundle is not signed)"] if key is not None else []
    try:
        envelope = Envelope.from_dict(json.loads(path.read_text(encoding="utf-8")))
        statement = json.loads(envelope.payload)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{name}: {ATTESTATION}: unreadable envelope: {exc}"]
    problems = []
    if envelope.payload_type != PAYLOAD_TYPE or statement.get("_type") != STATEMENT_TYPE:
        problems.append(f"{name}: {ATTESTATION}: not an in-toto Statement v1 in a DSSE envelope")
    subjects = {s.get("name"): (s.get("digest") or {}).get("sha256")
                for s in statement.get("subject") or [] if isinstance(s, dict)}
    if subjects.get(SUBJECT) != manifest_sha:
        problems.append(f"{name}: {ATTESTATION}: signs another manifest (subject sha256 "
                        f"{subjects.get(SUBJECT)}, this manifest.json is {manifest_sha})")
    if (statement.get("predicate") or {}).get("bundle") not in (None, name):
        problems.append(f"{name}: {ATTESTATION}: signed for bundle "
                        f"{statement['predicate']['bundle']}, not {name}")
    if key is not None:
        try:
            envelope.verify([key], 1)
        except VerificationError:
            problems.append(f"{name}: {ATTESTATION}: bad signature (not made by the given public "
                            "key over this envelope)")
    return problems


def read_statement(bundle: Path) -> dict[str, Any] | None:
    """The signed statement of a bundle (unverified), or None when it has no attestation."""
    import base64
    path = bundle / ATTESTATION
    if not path.is_file():
        return None
    try:
        return json.loads(base64.b64decode(json.loads(path.read_text(encoding="utf-8"))["payload"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None

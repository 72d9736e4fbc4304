"""Signed bundles: an in-toto Statement over manifest.json in a DSSE envelope, made with a local
Ed25519 / P-256 key or an AWS KMS key (moto over real HTTP), checked by ``verify --public-key``."""
from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from attest.cli import main
from attest.config import load_config
from attest.errors import ConfigError
from attest.manifest import verify
from attest.scan import run_scan
from attest.store import list_bundles
from attest.signing import ATTESTATION, PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE, load_public_key
from tests.conftest import NOW


def write_key(path: Path, kind: str = "ed25519") -> Path:
    key = {"ed25519": ed25519.Ed25519PrivateKey.generate,
           "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
           "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
           "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)}[kind]()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def write_config(folder: Path, text: str) -> Path:
    path = folder / "config.yaml"
    path.write_text(text)
    return path


def scan(config: Path, days: int = 0):
    return run_scan(load_config(config), now=NOW + timedelta(days=days))


def public_pem(config: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    assert main(["keys", "public", "--config", str(config)]) == 0
    pem = capsys.readouterr().out
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    path = tmp_path / "attest-signing.pub.pem"
    path.write_text(pem)
    return path


def rewrite_results(bundle: Path, status: str = "pass") -> None:
    """What a tamperer with write access does: edit results.json and fix its manifest entry."""
    results = json.loads((bundle / "results.json").read_text())
    for control in results["controls"]:
        control["status"] = status
    data = (json.dumps(results, sort_keys=True, indent=2) + "\n").encode()
    (bundle / "results.json").write_bytes(data)
    manifest = json.loads((bundle / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["path"] == "results.json":
            entry.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    (bundle / "manifest.json").write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n")


@pytest.mark.parametrize("kind", ["ed25519", "p256"])
def test_local_key_signs_every_bundle_and_verify_checks_it(tmp_path: Path, kind: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    write_key(tmp_path / "signing.pem", kind)
    config = write_config(tmp_path, "output_dir: ev\nsigning:\n  private_key_path: signing.pem\n")
    first, second = scan(config), scan(config, days=1)
    envelope = json.loads((second.bundle / ATTESTATION).read_text())
    assert envelope["payloadType"] == PAYLOAD_TYPE and len(envelope["signatures"]) == 1
    statement = json.loads(base64.b64decode(envelope["payload"]))
    manifest_bytes = (second.bundle / "manifest.json").read_bytes()
    assert statement["_type"] == STATEMENT_TYPE and statement["predicateType"] == PREDICATE_TYPE
    assert statement["subject"] == [{"name": "manifest.json",
                                     "digest": {"sha256": hashlib.sha256(manifest_bytes).hexdigest()}}]
    predicate = statement["predicate"]
    scan_json = json.loads((second.bundle / "results.json").read_text())["scan"]
    assert predicate["scan_id"] == scan_json["id"] and predicate["bundle"] == second.bundle.name
    assert predicate["started_at"] == scan_json["started_at"]
    assert predicate["finished_at"] == scan_json["finished_at"]
    assert predicate["tool_version"] == scan_json["tool_version"]
    assert predicate["previous_bundle"] == first.bundle.name
    assert predicate["previous_manifest_sha256"] == hashlib.sha256(
        (first.bundle / "manifest.json").read_bytes()).hexdigest()
    assert predicate["counts"] == json.loads((second.bundle / "results.json").read_text())[
        "summary"]["counts"]
    # the attestation is beside the manifest, not listed in it (it signs the manifest)
    assert ATTESTATION not in {f["path"] for f in json.loads(manifest_bytes)["files"]}

    pub = public_pem(config, capsys, tmp_path)
    assert main(["verify", str(tmp_path / "ev"), "--public-key", str(pub)]) == 0
    assert "every bundle is signed by the given public key" in capsys.readouterr().out


def test_edited_results_with_a_fixed_manifest_no_longer_verify(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's attack: edit the newest bundle's results.json and its manifest entry. Hashes
    and chain still agree; the signature does not."""
    write_key(tmp_path / "signing.pem")
    config = write_config(tmp_path, "output_dir: ev\nsigning:\n  private_key_path: signing.pem\n")
    scan(config)
    newest = scan(config, days=1).bundle
    pub = public_pem(config, capsys, tmp_path)
    rewrite_results(newest)
    assert verify(newest.parent)[1] == [
        f"{newest.name}: {ATTESTATION}: signs another manifest (subject sha256 "
        f"{json.loads(base64.b64decode(json.loads((newest / ATTESTATION).read_text())['payload']))['subject'][0]['digest']['sha256']}, "
        f"this manifest.json is {hashlib.sha256((newest / 'manifest.json').read_bytes()).hexdigest()})"]
    assert main(["verify", str(newest.parent), "--public-key", str(pub)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL {newest.name}: {ATTESTATION}: signs another manifest" in out

    # ...and deleting the signature too only helps without the key
    (newest / ATTESTATION).unlink()
    assert main(["verify", str(newest.parent)]) == 0
    assert "signatures not checked" in capsys.readouterr().out
    assert main(["verify", str(newest.parent), "--public-key", str(pub)]) == 1
    assert f"FAIL {newest.name}: {ATTESTATION}: missing (the bundle is not signed)" in \
        capsys.readouterr().out


def test_bad_signature_wrong_key_and_a_signature_over_another_manifest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_key(tmp_path / "signing.pem")
    config = write_config(tmp_path, "output_dir: ev\nsigning:\n  private_key_path: signing.pem\n")
    one, two = scan(config).bundle, scan(config, days=1).bundle
    pub = public_pem(config, capsys, tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    write_key(other / "k.pem")
    wrong = public_pem(write_config(other, "signing:\n  private_key_path: k.pem\n"), capsys, other)

    assert main(["verify", str(one.parent), "--public-key", str(wrong)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL {one.name}: {ATTESTATION}: bad signature" in out
    assert f"FAIL {two.name}: {ATTESTATION}: bad signature" in out

    envelope = json.loads((two / ATTESTATION).read_text())
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[5] ^= 1
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    (two / ATTESTATION).write_text(json.dumps(envelope))
    assert verify(one.parent, public_key=load_public_key(pub))[1] == [
        f"{two.name}: {ATTESTATION}: bad signature (not made by the given public key over this envelope)"]

    # a valid signature, but over the other bundle's manifest
    (two / ATTESTATION).write_bytes((one / ATTESTATION).read_bytes())
    problems = verify(one.parent, public_key=load_public_key(pub))[1]
    assert any(p.startswith(f"{two.name}: {ATTESTATION}: signs another manifest") for p in problems)
    assert any(p.startswith(f"{two.name}: {ATTESTATION}: signed for bundle {one.name}") for p in problems)


@pytest.mark.parametrize("kind,message", [("rsa", "expected an Ed25519 or ECDSA P-256 key"),
                                          ("p384", "expected an Ed25519 or ECDSA P-256 key")])
def test_unsupported_local_keys_are_a_config_error(tmp_path: Path, kind: str, message: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    write_key(tmp_path / "k.pem", kind)
    config = write_config(tmp_path, "signing:\n  private_key_path: k.pem\n")
    with pytest.raises(ConfigError, match=message):
        scan(config)
    assert main(["scan", "--config", str(config)]) == 2
    assert message in capsys.readouterr().err


def test_signing_config_mistakes_are_one_line_exit_2(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        "signing:\n  private_key_path: missing.pem\n": "signing key file not found",
        "signing: {}\n": "give exactly one of kms_key_id or private_key_path",
        "signing:\n  kms_key_id: k\n  private_key_path: x.pem\n": "give exactly one",
        "signing:\n  private_key: x\n": "signing.private_key: unknown key",
    }
    (tmp_path / "not-a-key.pem").write_text("hello\n")
    cases["signing:\n  private_key_path: not-a-key.pem\n"] = "not a readable PEM private key"
    for text, message in cases.items():
        config = write_config(tmp_path, "output_dir: ev\n" + text)
        assert main(["scan", "--config", str(config)]) == 2, text
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (text, err)
        assert not (tmp_path / "ev").exists() or not list((tmp_path / "ev").iterdir()), \
            "a scan that could never seal its bundle collects nothing"
    assert main(["keys", "public", "--config", str(write_config(tmp_path, "output_dir: ev\n"))]) == 2
    assert "no signing: section" in capsys.readouterr().err
    assert main(["verify", str(tmp_path), "--public-key", str(tmp_path / "nope.pem")]) == 2
    assert "public key file not found" in capsys.readouterr().err
    assert main(["verify", str(tmp_path), "--public-key", str(tmp_path / "not-a-key.pem")]) == 2
    assert "not a PEM public key" in capsys.readouterr().err


# ---- AWS KMS (moto over real HTTP) -------------------------------------------------------------

def kms_key(url: str, spec: str = "ECC_NIST_P256", usage: str = "SIGN_VERIFY") -> str:
    kms = boto3.client("kms", region_name="us-east-1", endpoint_url=url)
    return kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["Arn"]


def test_kms_key_signs_bundles_and_keys_public_prints_its_key(moto: str, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    arn = kms_key(moto)
    # the KMS key is reached with the AWS section's endpoint_url (here: moto), default chain
    config = write_config(tmp_path, f"output_dir: ev\naws:\n  endpoint_url: {moto}\n"
                                    f"  regions: [us-east-1]\nsigning:\n  kms_key_id: {arn}\n")
    scan(config)
    pub = public_pem(config, capsys, tmp_path)
    kms = boto3.client("kms", region_name="us-east-1", endpoint_url=moto)
    der = kms.get_public_key(KeyId=arn)["PublicKey"]
    assert serialization.load_pem_public_key(pub.read_bytes()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == der
    assert main(["verify", str(tmp_path / "ev"), "--public-key", str(pub)]) == 0
    bundle = list_bundles(tmp_path / "ev")[0]
    rewrite_results(bundle, "fail")
    assert main(["verify", str(tmp_path / "ev"), "--public-key", str(pub)]) == 1


def test_a_kms_key_that_cannot_sign_is_refused_before_collecting(moto: str, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    arn = kms_key(moto, spec="SYMMETRIC_DEFAULT", usage="ENCRYPT_DECRYPT")
    config = write_config(tmp_path, f"output_dir: ev\naws:\n  endpoint_url: {moto}\n"
                                    f"signing:\n  kms_key_id: {arn}\n")
    assert main(["scan", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "signing.kms_key_id" in err and err.count("\n") == 1
    missing = arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    config = write_config(tmp_path, f"output_dir: ev\naws:\n  endpoint_url: {moto}\n"
                                    f"signing:\n  kms_key_id: {missing}\n")
    assert main(["keys", "public", "--config", str(config)]) == 2
    assert "kms:GetPublicKey" in capsys.readouterr().err
    assert not (tmp_path / "ev").exists() or not any((tmp_path / "ev").iterdir())

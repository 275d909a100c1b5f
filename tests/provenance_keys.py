"""Keys and a tiny certificate authority for signing tests, made with
`cryptography` at test time (nothing secret is committed)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


class KeyPair(NamedTuple):
    private: Path
    public: Path


def write_key(key: PrivateKey, folder: Path, name: str) -> KeyPair:
    """NAME.pem (PKCS#8, unencrypted) and NAME.pub (SubjectPublicKeyInfo) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    private = folder / f"{name}.pem"
    public = folder / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return KeyPair(private, public)


def ec_key_pair(folder: Path, name: str = "signer") -> KeyPair:
    return write_key(ec.generate_private_key(ec.SECP256R1()), folder, name)


def ed25519_key_pair(folder: Path, name: str = "ed") -> KeyPair:
    return write_key(ed25519.Ed25519PrivateKey.generate(), folder, name)


class TinyCA(NamedTuple):
    root: Path
    """The root certificate (PEM): the trust anchor a verifier is given."""
    leaf: Path
    """The signing certificate (PEM) for `key`."""
    key: Path
    """The signing private key (PEM)."""


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def tiny_ca(folder: Path, name: str = "ca") -> TinyCA:
    """A root CA and one code-signing leaf certificate, valid from yesterday."""
    now = datetime.datetime.now(datetime.timezone.utc)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} root"))
        .issuer_name(_name(f"{name} root"))
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(root_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} model publisher"))
        .issuer_name(root.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    paths = TinyCA(folder / f"{name}-root.crt", folder / f"{name}-leaf.crt", folder / f"{name}-leaf.pem")
    paths.root.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    paths.leaf.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    write_key(leaf_key, folder, f"{name}-leaf")
    return paths

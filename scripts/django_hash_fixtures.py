#!/usr/bin/env python3
"""Writes known-answer password hashes made by Django's own password hashers, as JSON.

Tollgate's tests check that it verifies every one of them (and refuses a wrong password), so
that users imported from a Django database keep their passwords. Salts are fixed, so a rerun
writes the same file byte for byte.

    python3 -m venv venv
    venv/bin/pip install 'django==4.2.*' argon2-cffi bcrypt
    venv/bin/python scripts/django_hash_fixtures.py \
        > crates/tollgate-core/src/password/fixtures/django_hashes.json

Django 4.2 is used because it is the last release that still ships every legacy hasher
(sha1, unsalted_md5, unsalted_sha1); the formats of the others are unchanged in 5.x.
"""

import json
import sys

import django
from django.conf import settings

settings.configure(
    PASSWORD_HASHERS=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "django.contrib.auth.hashers.BCryptPasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.SHA1PasswordHasher",
        "django.contrib.auth.hashers.UnsaltedMD5PasswordHasher",
        "django.contrib.auth.hashers.UnsaltedSHA1PasswordHasher",
    ]
)
django.setup()

import argon2  # noqa: E402
from django.contrib.auth import hashers  # noqa: E402

PASSWORDS = ["correct horse battery staple", "pässwörd ✓ 密码", "12345678"]


class Argon2iHasher(hashers.Argon2PasswordHasher):
    """Django before 3.2 wrote argon2i; today's hasher still verifies such hashes."""

    def params(self):
        params = super().params()
        params.type = argon2.low_level.Type.I
        return params


def cheap(hasher, **attributes):
    for name, value in attributes.items():
        setattr(hasher, name, value)
    return hasher


def fixtures():
    pbkdf2 = hashers.PBKDF2PasswordHasher()
    pbkdf2_sha1 = hashers.PBKDF2SHA1PasswordHasher()
    argon2id = cheap(hashers.Argon2PasswordHasher(), time_cost=1, memory_cost=64, parallelism=2)
    argon2i = cheap(Argon2iHasher(), time_cost=2, memory_cost=128, parallelism=1)
    bcrypt_sha256 = cheap(hashers.BCryptSHA256PasswordHasher(), rounds=4)
    bcrypt = cheap(hashers.BCryptPasswordHasher(), rounds=4)
    scrypt = cheap(hashers.ScryptPasswordHasher(), work_factor=1024, block_size=8, parallelism=1)
    makers = [
        ("pbkdf2_sha256", lambda pw, i: pbkdf2.encode(pw, f"saltsalt{i}", iterations=1000)),
        # Django 4.2's default cost, as found in real databases.
        ("pbkdf2_sha256", lambda pw, i: pbkdf2.encode(pw, f"Yv2kqG9VtWbL0cDq{i}", iterations=600000)),
        ("pbkdf2_sha1", lambda pw, i: pbkdf2_sha1.encode(pw, f"sha1salt{i}", iterations=1000)),
        ("argon2id", lambda pw, i: argon2id.encode(pw, f"argonsalt{i}abcdefghij")),
        ("argon2i", lambda pw, i: argon2i.encode(pw, f"oldargonsalt{i}abcdefg")),
        ("bcrypt_sha256", lambda pw, i: bcrypt_sha256.encode(pw, f"$2b$04$abcdefghijklmnopqrst{i}e".encode())),
        ("bcrypt", lambda pw, i: bcrypt.encode(pw, f"$2b$04$ABCDEFGHIJKLMNOPQRST{i}O".encode())),
        ("scrypt", lambda pw, i: scrypt.encode(pw, f"scryptsalt{i}")),
        ("md5", lambda pw, i: hashers.MD5PasswordHasher().encode(pw, f"md5salt{i}")),
        ("sha1", lambda pw, i: hashers.SHA1PasswordHasher().encode(pw, f"sha1salt{i}")),
        ("unsalted_md5", lambda pw, i: hashers.UnsaltedMD5PasswordHasher().encode(pw, "")),
        ("unsalted_sha1", lambda pw, i: hashers.UnsaltedSHA1PasswordHasher().encode(pw, "")),
    ]
    out = []
    for kind, make in makers:
        for i, password in enumerate(PASSWORDS):
            encoded = make(password, i)
            assert hashers.check_password(password, encoded), (kind, encoded)
            assert not hashers.check_password(password + "x", encoded), (kind, encoded)
            out.append({"format": kind, "password": password, "encoded": encoded})
    # Django's unsalted MD5 hasher also accepts the bare 32-digit hex digest.
    bare = hashers.UnsaltedMD5PasswordHasher().encode(PASSWORDS[0], "").split("$")[-1]
    assert hashers.check_password(PASSWORDS[0], bare)
    out.append({"format": "unsalted_md5_bare", "password": PASSWORDS[0], "encoded": bare})
    # set_unusable_password(): "!" and 40 random characters; never matches.
    unusable = hashers.make_password(None)
    assert not hashers.check_password("", unusable)
    out.append({"format": "unusable", "password": "", "encoded": "!" + "x" * 40})
    return out


json.dump({"django": django.get_version(), "hashes": fixtures()}, sys.stdout, ensure_ascii=False, indent=1)
sys.stdout.write("\n")

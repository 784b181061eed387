# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""bcrypt ($2b$) in plain Python, for the registry's htpasswd file.

The Docker registry accepts only bcrypt in htpasswd. ansible-core's password_hash needs passlib,
and Python 3.13 dropped the crypt module, so the collection carries its own implementation
(Provos and Mazieres' EksBlowfish). The ``bcrypt`` package is used instead when it is installed.
Blowfish's initial P-array and S-boxes are the hexadecimal digits of pi, computed here once with
integer arithmetic rather than stored as a 4168-word table.
"""

from __future__ import annotations

import os

_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_DECODE = {c: i for i, c in enumerate(_ALPHABET)}
_MASK = 0xFFFFFFFF
_PI_WORDS = None


def _pi_words(count=18 + 4 * 256):
    """The first ``count`` 32-bit words of pi's fractional part (Machin's formula, fixed point)."""
    global _PI_WORDS
    if _PI_WORDS is None:
        bits = count * 32 + 64

        def arctan_inv(x):
            one = 1 << bits
            total = term = one // x
            x2 = x * x
            n = 1
            sign = -1
            while term:
                term //= x2
                total += sign * (term // (2 * n + 1))
                sign = -sign
                n += 1
            return total

        pi = 16 * arctan_inv(5) - 4 * arctan_inv(239)
        frac = pi - (3 << bits)
        frac >>= 64
        words = []
        for i in range(count):
            shift = (count - 1 - i) * 32
            words.append((frac >> shift) & _MASK)
        _PI_WORDS = words
    return _PI_WORDS


class _Blowfish:
    def __init__(self):
        words = _pi_words()
        self.p = list(words[:18])
        self.s = [list(words[18 + 256 * i:18 + 256 * (i + 1)]) for i in range(4)]

    def encrypt(self, left, right):
        p = self.p
        s0, s1, s2, s3 = self.s
        for i in range(16):
            left ^= p[i]
            right ^= ((((s0[left >> 24] + s1[(left >> 16) & 0xFF]) & _MASK) ^ s2[(left >> 8) & 0xFF]) + s3[left & 0xFF]) & _MASK
            left, right = right, left
        left, right = right, left
        right ^= p[16]
        left ^= p[17]
        return left, right

    @staticmethod
    def _stream(data):
        """Cycle through ``data`` yielding 32-bit big-endian words."""
        pos = 0
        n = len(data)
        while True:
            word = 0
            for dummy in range(4):
                word = (word << 8) | data[pos]
                pos = (pos + 1) % n
            yield word

    def expand(self, key, salt=None):
        keys = self._stream(key)
        for i in range(18):
            self.p[i] ^= next(keys)
        left = right = 0
        salts = self._stream(salt) if salt else None
        for i in range(0, 18, 2):
            if salts:
                left ^= next(salts)
                right ^= next(salts)
            left, right = self.encrypt(left, right)
            self.p[i], self.p[i + 1] = left, right
        for box in self.s:
            for i in range(0, 256, 2):
                if salts:
                    left ^= next(salts)
                    right ^= next(salts)
                left, right = self.encrypt(left, right)
                box[i], box[i + 1] = left, right


def _b64_encode(data):
    out = []
    i = 0
    while i < len(data):
        c1 = data[i]
        i += 1
        out.append(_ALPHABET[c1 >> 2])
        c1 = (c1 & 0x03) << 4
        if i >= len(data):
            out.append(_ALPHABET[c1])
            break
        c2 = data[i]
        i += 1
        out.append(_ALPHABET[c1 | (c2 >> 4)])
        c1 = (c2 & 0x0F) << 2
        if i >= len(data):
            out.append(_ALPHABET[c1])
            break
        c2 = data[i]
        i += 1
        out.append(_ALPHABET[c1 | (c2 >> 6)])
        out.append(_ALPHABET[c2 & 0x3F])
    return "".join(out)


def _b64_decode(text, length):
    out = bytearray()
    vals = [_DECODE[c] for c in text]
    i = 0
    while len(out) < length and i + 1 < len(vals):
        out.append(((vals[i] << 2) | (vals[i + 1] >> 4)) & 0xFF)
        if len(out) >= length or i + 2 >= len(vals):
            break
        out.append(((vals[i + 1] << 4) | (vals[i + 2] >> 2)) & 0xFF)
        if len(out) >= length or i + 3 >= len(vals):
            break
        out.append(((vals[i + 2] << 6) | vals[i + 3]) & 0xFF)
        i += 4
    return bytes(out[:length])


def gensalt(rounds=10, random_bytes=None):
    """``$2b$10$`` plus 22 characters encoding 16 random bytes."""
    if not 4 <= int(rounds) <= 31:
        raise ValueError(f"bcrypt rounds must be 4..31, got {rounds}")
    raw = random_bytes if random_bytes is not None else os.urandom(16)
    return f"$2b${int(rounds):02d}${_b64_encode(raw)[:22]}"


def _pure_hashpw(password, setting):
    parts = setting.split("$")
    if len(parts) < 4 or parts[1] not in ("2a", "2b", "2y") or len(parts[3]) < 22:
        raise ValueError(f"not a bcrypt salt: {setting!r}")
    ident, cost, salt_text = parts[1], int(parts[2]), parts[3][:22]
    if not 4 <= cost <= 31:
        raise ValueError(f"bcrypt cost must be 4..31, got {cost}")
    salt = _b64_decode(salt_text, 16)
    key = password.encode("utf-8")[:72] + b"\0"
    key = key[:72]
    state = _Blowfish()
    state.expand(key, salt)
    for dummy in range(1 << cost):
        state.expand(key)
        state.expand(salt)
    ctext = list(int.from_bytes(b"OrpheanBeholderScryDoubt"[i:i + 4], "big") for i in range(0, 24, 4))
    for dummy in range(64):
        for j in range(0, 6, 2):
            ctext[j], ctext[j + 1] = state.encrypt(ctext[j], ctext[j + 1])
    raw = b"".join(w.to_bytes(4, "big") for w in ctext)
    return f"${ident}${cost:02d}${_b64_encode(salt)[:22]}{_b64_encode(raw[:23])}"


def hashpw(password, setting):
    """bcrypt hash of ``password`` with the salt and cost in ``setting`` ($2b$NN$<22 chars>)."""
    try:
        import bcrypt  # pyca/bcrypt, when installed: much faster
    except ImportError:
        return _pure_hashpw(password, setting)
    return bcrypt.hashpw(password.encode("utf-8")[:72], setting[:29].encode("ascii")).decode("ascii")


def htpasswd_line(username, password, setting):
    if ":" in username:
        raise ValueError("an htpasswd user name cannot contain ':'")
    return f"{username}:{hashpw(password, setting)}"

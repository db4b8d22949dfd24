"""A structure-aware mutator for TLS server flights.

A flight is parsed into records (type, version, length, body); handshake
records are further split into handshake messages and a ServerHello into its
fields and extensions.  Each mutation is a small tuple ``(op, a, b, c)`` of
plain integers, so hypothesis can draw and shrink it and a regression file
can store it; :func:`apply` is deterministic.  Whatever the op and integers,
:func:`apply` returns bytes (ops that do not fit the flight leave it as is).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["OPS", "Record", "apply", "apply_all", "dump", "fixup_session_id", "parse", "split"]

#: Values worth trying for each kind of field.
LENGTHS = (0, 1, 2, 3, 0x3FFF, 0x4000, 0x4001, 0x4100, 0x4800, 0x7FFF, 0xFFFF)
CONTENT_TYPES = (20, 21, 22, 23, 24, 0, 1, 25, 0x7F, 0xFF)
VERSIONS = (0x0300, 0x0301, 0x0302, 0x0303, 0x0304, 0x0000, 0x0200, 0x0305, 0x7F1C, 0xFEFD,
            0xFFFF)
HS_TYPES = (0, 1, 2, 4, 5, 6, 8, 11, 12, 13, 14, 15, 16, 20, 24, 254, 255)
BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)
EXT_TYPES = (0, 10, 11, 13, 16, 23, 35, 41, 42, 43, 44, 45, 51, 0xFF01, 0xFFFF, 0x1234)


@dataclass
class Record:
    type: int
    version: int
    body: bytes
    length: int | None = None  #: a forced length field, None: the body's length

    def dump(self) -> bytes:
        n = len(self.body) if self.length is None else self.length
        return struct.pack("!BHH", self.type, self.version, n & 0xFFFF) + self.body


def parse(data: bytes) -> tuple[list[Record], bytes]:
    """Records, and what trails the last complete one."""
    out: list[Record] = []
    i = 0
    while len(data) - i >= 5:
        t, v, n = struct.unpack_from("!BHH", data, i)
        if len(data) - i - 5 < n:
            break
        out.append(Record(t, v, data[i + 5:i + 5 + n]))
        i += 5 + n
    return out, data[i:]


def dump(records: list[Record], tail: bytes = b"") -> bytes:
    return b"".join(r.dump() for r in records) + tail


def _messages(body: bytes) -> list[tuple[int, int, int]]:
    """(offset, type, length) of each complete handshake message in a record body."""
    out = []
    i = 0
    while len(body) - i >= 4:
        t = body[i]
        n = int.from_bytes(body[i + 1:i + 4], "big")
        if len(body) - i - 4 < n:
            break
        out.append((i, t, n))
        i += 4 + n
    return out


def _server_hello(body: bytes) -> dict[str, int] | None:
    """Offsets of a ServerHello's fields in a handshake record body that starts with one."""
    if len(body) < 4 + 2 + 32 + 1 or body[0] != 2:
        return None
    sid = 4 + 2 + 32
    sid_len = body[sid]
    suite = sid + 1 + sid_len
    comp = suite + 2
    ext_len = comp + 1
    if len(body) < ext_len + 2:
        return None
    exts = ext_len + 2
    return {"sid": sid, "suite": suite, "comp": comp, "ext_len": ext_len, "exts": exts}


def _extensions(body: bytes, start: int) -> list[tuple[int, int, int]]:
    """(offset, type, length) of each extension from ``start`` on."""
    out = []
    i = start
    while len(body) - i >= 4:
        t, n = struct.unpack_from("!HH", body, i)
        if len(body) - i - 4 < n:
            break
        out.append((i, t, n))
        i += 4 + n
    return out


def _pick(seq, a):
    return seq[a % len(seq)]


def _set(body: bytes, at: int, value: bytes) -> bytes:
    if at < 0 or at + len(value) > len(body):
        return body
    return body[:at] + value + body[at + len(value):]


def _fix_sh_lengths(body: bytes) -> bytes:
    """Recompute the handshake length and the extensions length of a ServerHello."""
    f = _server_hello(body)
    body = body[:1] + (len(body) - 4).to_bytes(3, "big") + body[4:]
    if f is not None:
        body = _set(body, f["ext_len"], (len(body) - f["exts"]).to_bytes(2, "big"))
    return body


# -- operations: each takes (data, a, b, c) and returns bytes -------------------------------


def op_bitflip(data: bytes, a: int, b: int, c: int) -> bytes:
    if not data:
        return data
    i = a % len(data)
    return data[:i] + bytes([data[i] ^ (1 << (b % 8))]) + data[i + 1:]


def op_setbyte(data: bytes, a: int, b: int, c: int) -> bytes:
    if not data:
        return data
    i = a % len(data)
    v = _pick(BYTES, c) if b % 2 else c & 0xFF
    return data[:i] + bytes([v]) + data[i + 1:]


def op_truncate(data: bytes, a: int, b: int, c: int) -> bytes:
    return data[:a % (len(data) + 1)]


def op_insert(data: bytes, a: int, b: int, c: int) -> bytes:
    i = a % (len(data) + 1)
    return data[:i] + bytes([c & 0xFF]) * (1 + b % 64) + data[i:]


def op_erase(data: bytes, a: int, b: int, c: int) -> bytes:
    i = a % (len(data) + 1)
    return data[:i] + data[i + 1 + b % 64:]


def _with_records(fn):
    def op(data: bytes, a: int, b: int, c: int) -> bytes:
        records, tail = parse(data)
        if not records:
            return data
        records = fn(records, a, b, c)
        return dump(records, tail)
    op.__name__ = fn.__name__
    return op


@_with_records
def op_record_length(records, a, b, c):
    r = records[a % len(records)]
    n = len(r.body)
    r.length = _pick((*LENGTHS, n - 1, n + 1, n + 5, n * 2), b) & 0xFFFF
    return records


@_with_records
def op_record_type(records, a, b, c):
    records[a % len(records)].type = _pick(CONTENT_TYPES, b) if c % 4 else c & 0xFF
    return records


@_with_records
def op_record_version(records, a, b, c):
    records[a % len(records)].version = _pick(VERSIONS, b)
    return records


@_with_records
def op_duplicate(records, a, b, c):
    r = records[a % len(records)]
    records.insert(b % (len(records) + 1), Record(r.type, r.version, r.body))
    return records


@_with_records
def op_delete(records, a, b, c):
    del records[a % len(records)]
    return records


@_with_records
def op_swap(records, a, b, c):
    i, j = a % len(records), b % len(records)
    records[i], records[j] = records[j], records[i]
    return records


@_with_records
def op_fragment(records, a, b, c):
    """Split one record's body in two records (legal for handshake records)."""
    i = a % len(records)
    r = records[i]
    cut = b % (len(r.body) + 1)
    records[i:i + 1] = [Record(r.type, r.version, r.body[:cut]),
                        Record(r.type, r.version, r.body[cut:])]
    return records


@_with_records
def op_coalesce(records, a, b, c):
    """Join two neighbouring records' bodies into one."""
    i = a % len(records)
    if i + 1 < len(records):
        r, s = records[i], records[i + 1]
        records[i:i + 2] = [Record(r.type, r.version, r.body + s.body)]
    return records


@_with_records
def op_oversize(records, a, b, c):
    """A record body beyond the 2^14 (+ expansion) limit, with a consistent length."""
    r = records[a % len(records)]
    r.body = r.body + bytes([c & 0xFF]) * _pick((0x4000, 0x4100, 0x4801, 0x8000), b)
    return records


def _hs(fn):
    """An op on one handshake message of one handshake record."""
    @_with_records
    def op(records, a, b, c):
        hs = [r for r in records if r.type == 22]
        if not hs:
            return records
        r = hs[a % len(hs)]
        msgs = _messages(r.body)
        if not msgs:
            return records
        off, t, n = msgs[(a >> 4) % len(msgs)]
        r.body = fn(r.body, off, t, n, b, c)
        return records
    op.__name__ = fn.__name__
    return op


@_hs
def op_hs_type(body, off, t, n, b, c):
    return _set(body, off, bytes([_pick(HS_TYPES, b)]))


@_hs
def op_hs_length(body, off, t, n, b, c):
    v = _pick((0, 1, n - 1, n + 1, 0xFFFF, 0xFFFFFF, 0x10000, 2 * n), b) & 0xFFFFFF
    return _set(body, off + 1, v.to_bytes(3, "big"))


@_hs
def op_hs_truncate(body, off, t, n, b, c):
    """Cut a handshake message short, keeping its length field consistent."""
    keep = b % (n + 1)
    msg = bytes([t]) + keep.to_bytes(3, "big") + body[off + 4:off + 4 + keep]
    return body[:off] + msg + body[off + 4 + n:]


@_hs
def op_hs_duplicate(body, off, t, n, b, c):
    msg = body[off:off + 4 + n]
    return body[:off] + msg + body[off:]


@_hs
def op_hs_drop(body, off, t, n, b, c):
    return body[:off] + body[off + 4 + n:]


@_hs
def op_hs_byte(body, off, t, n, b, c):
    """Overwrite one byte inside a handshake message body (lengths, vectors, DER...)."""
    if n == 0:
        return body
    i = off + 4 + b % n
    return _set(body, i, bytes([_pick(BYTES, c) if c & 0x100 else c & 0xFF]))


def _sh(fn):
    """An op on the ServerHello at the start of a handshake record, lengths kept consistent
    unless the op sets them itself."""
    @_with_records
    def op(records, a, b, c):
        for r in records:
            if r.type == 22 and _server_hello(r.body) is not None:
                r.body = fn(r.body, _server_hello(r.body), a, b, c)
                break
        return records
    op.__name__ = fn.__name__
    return op


def _sh_split(body: bytes, f: dict[str, int]) -> tuple[bytes, bytes, bytes]:
    """(ServerHello up to its extensions, its extensions, the messages after it)."""
    n = int.from_bytes(body[1:4], "big")
    end = min(len(body), 4 + n)
    return body[:f["exts"]], body[f["exts"]:end], body[end:]


@_sh
def op_sh_version(body, f, a, b, c):
    return _set(body, 4, _pick(VERSIONS, b).to_bytes(2, "big"))


@_sh
def op_sh_suite(body, f, a, b, c):
    suites = (0x0000, 0x00FF, 0x1301, 0x1302, 0x1303, 0x1304, 0xC02B, 0xC02F, 0xC030, 0x009C,
              0x0005, 0xCCA8, 0x5600, 0xFFFF)
    return _set(body, f["suite"], _pick(suites, b).to_bytes(2, "big"))


@_sh
def op_sh_compression(body, f, a, b, c):
    return _set(body, f["comp"], bytes([_pick((0, 1, 0x40, 0xFF), b)]))


@_sh
def op_sh_session_id_length(body, f, a, b, c):
    return _set(body, f["sid"], bytes([_pick((0, 1, 31, 32, 33, 0xFF), b)]))


@_sh
def op_sh_random(body, f, a, b, c):
    """The TLS 1.3 downgrade sentinels, or a HelloRetryRequest's magic random."""
    sentinels = (
        bytes.fromhex("444f574e47524401"), bytes.fromhex("444f574e47524400"),
    )
    hrr = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
    if b % 3 == 2:
        return _set(body, 6, hrr)
    return _set(body, 6 + 24, sentinels[b % 2])


@_sh
def op_ext_mutate(body, f, a, b, c):
    """Change one extension's type, length or a byte of its data."""
    exts = _extensions(body, f["exts"])
    if not exts:
        return body
    off, t, n = exts[a % len(exts)]
    what = b % 3
    if what == 0:
        return _set(body, off, _pick(EXT_TYPES, c).to_bytes(2, "big"))
    if what == 1:
        return _set(body, off + 2, _pick((0, 1, n - 1 if n else 0, n + 1, 0xFFFF), c)
                    .to_bytes(2, "big"))
    if n == 0:
        return body
    return _set(body, off + 4 + (c >> 8) % n, bytes([c & 0xFF]))


@_sh
def op_ext_reshape(body, f, a, b, c):
    """Drop, duplicate, reorder or add extensions, keeping every length consistent."""
    head, ext_bytes, rest = _sh_split(body, f)
    exts = [ext_bytes[o - f["exts"]:o - f["exts"] + 4 + n]
            for o, _t, n in _extensions(body, f["exts"])]
    what = b % 5
    if what == 0 and exts:
        del exts[a % len(exts)]
    elif what == 1 and exts:
        exts.insert(c % (len(exts) + 1), exts[a % len(exts)])
    elif what == 2 and len(exts) > 1:
        exts.reverse()
    elif what == 3:
        t = _pick(EXT_TYPES, c)
        data = bytes([c & 0xFF]) * ((c >> 8) % 40)
        exts.insert(a % (len(exts) + 1), t.to_bytes(2, "big") + len(data).to_bytes(2, "big")
                    + data)
    else:
        # supported_versions with an odd value (or an odd length)
        v = _pick(VERSIONS, c)
        data = v.to_bytes(2, "big") if a % 2 == 0 else bytes([2]) + v.to_bytes(2, "big")
        exts.insert(0, b"\x00\x2b" + len(data).to_bytes(2, "big") + data)
    return _fix_sh_lengths(head + b"".join(exts)) + rest


OPS = {f.__name__[3:]: f for f in (
    op_bitflip, op_setbyte, op_truncate, op_insert, op_erase,
    op_record_length, op_record_type, op_record_version, op_duplicate, op_delete, op_swap,
    op_fragment, op_coalesce, op_oversize,
    op_hs_type, op_hs_length, op_hs_truncate, op_hs_duplicate, op_hs_drop, op_hs_byte,
    op_sh_version, op_sh_suite, op_sh_compression, op_sh_session_id_length, op_sh_random,
    op_ext_mutate, op_ext_reshape,
)}


def apply(data: bytes, op: str, a: int, b: int, c: int) -> bytes:
    return OPS[op](data, a, b, c)


def apply_all(data: bytes, ops) -> bytes:
    for op, a, b, c in ops:
        data = apply(data, op, a, b, c)
    return data


def split(data: bytes, cuts) -> list[bytes]:
    """``data`` cut at the given sizes (cycled), for separate receive_data calls."""
    if not cuts:
        return [data] if data else []
    out = []
    i = k = 0
    while i < len(data):
        n = max(1, cuts[k % len(cuts)])
        out.append(data[i:i + n])
        i += n
        k += 1
    return out


def fixup_session_id(server: bytes, client: bytes) -> bytes:
    """Echo the client's legacy_session_id in a replayed ServerHello.

    A recorded flight carries another client's session id; a TLS 1.3 client stops at
    that mismatch.  Copying the live one in lets the input reach key exchange.  Lengths
    must already agree, so a mutated length is left as mutated.
    """
    at = 5 + 4 + 2 + 32
    if len(server) <= at or len(client) <= at or server[0] != 22 or server[5] != 2:
        return server
    if client[0] != 22 or client[5] != 1 or server[at] != client[at]:
        return server
    n = client[at]
    if len(server) < at + 1 + n or len(client) < at + 1 + n:
        return server
    return server[:at + 1] + client[at + 1:at + 1 + n] + server[at + 1 + n:]

#!/usr/bin/env python3
"""Writes the seed corpus in Fuzz/Corpus/<target>/: small valid examples of each input, so the fuzzer
starts from the shapes real peers, trackers and kernels send. Rerun after changing it; the files are
committed so a run needs no Python."""
import hashlib, os, struct, sys

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Corpus")

def benc(v):
    if isinstance(v, int): return b"i%de" % v
    if isinstance(v, str): v = v.encode()
    if isinstance(v, bytes): return b"%d:%s" % (len(v), v)
    if isinstance(v, list): return b"l" + b"".join(benc(x) for x in v) + b"e"
    if isinstance(v, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, x) for k, x in v.items())
        return b"d" + b"".join(benc(k) + benc(x) for k, x in items) + b"e"
    raise TypeError(v)

def write(target, name, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    with open(os.path.join(out, target, name), "wb") as f: f.write(data)

# bencode
for name, data in {"integer": b"i-42e", "string": b"4:spam", "list": b"l4:spami3ee",
                   "dict": b"d3:cow3:moo4:spaml1:a1:bee", "nested": b"d1:ad1:bl1:cd1:di0eeeee",
                   "unsorted": b"d1:bi1e1:ai2ee", "prefix": b"d8:msg_typei1e5:piecei0eeRAW"}.items():
    write("bencode", name, data)

# metainfo
def torrent(info, **top):
    return benc(dict(info=info, **top))
piece = 16384
single = {"name": "file.bin", "piece length": piece, "length": 40000,
          "pieces": b"".join(hashlib.sha1(bytes([i])).digest() for i in range(3))}
multi = {"name": "album", "piece length": piece, "pieces": hashlib.sha1(b"x").digest() * 2,
         "files": [{"length": 20000, "path": ["cd1", "01.flac"]},
                   {"length": 8, "path": [".pad", "8"], "attr": "p"},
                   {"length": 1000, "path": ["cover.jpg"], "path.utf-8": ["cover.jpg"]}]}
write("metainfo", "single", torrent(single, announce="http://tracker.example/announce", comment="hi"))
write("metainfo", "multi", torrent(multi, **{"announce-list": [["udp://a.example:6969"], ["http://b.example/a"]],
                                              "created by": "burrow", "creation date": 1700000000}))
write("metainfo", "private", torrent(dict(single, private=1)))

# magnet
h = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"
for name, uri in {"plain": f"magnet:?xt=urn:btih:{h}",
                  "full": f"magnet:?xt=urn:btih:{h}&dn=Some+Name%21&tr=udp%3A%2F%2Ft.example%3A6969&tr.1=http://x/a"
                          "&x.pe=10.0.0.1:6881&x.pe=[::1]:51413",
                  "base32": "magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK&dn=b32"}.items():
    write("magnet", name, uri.encode())

# peer wire: flags byte, two read sizes, then the stream
def msg(mid, payload=b""): return struct.pack(">I", 1 + len(payload)) + bytes([mid]) + payload
handshake = bytes([19]) + b"BitTorrent protocol" + bytes([0, 0, 0, 0, 0, 0x10, 0, 5]) + bytes(range(20)) + b"-BU0001-abcdefghijkl"
messages = (msg(20, bytes([0]) + benc({"m": {"ut_metadata": 1, "ut_pex": 2}, "v": "x"})) + msg(5, b"\xff\xe0")
            + msg(2) + msg(1) + msg(4, struct.pack(">I", 7)) + msg(6, struct.pack(">III", 1, 0, 16384))
            + msg(7, struct.pack(">II", 1, 0) + b"B" * 64) + struct.pack(">I", 0) + msg(9, struct.pack(">H", 6881))
            + msg(14) + msg(15) + msg(16, struct.pack(">III", 1, 0, 16384)) + msg(17, struct.pack(">I", 3))
            + msg(8, struct.pack(">III", 1, 0, 16384)) + msg(0) + msg(3) + msg(99, b"unknown"))
write("peerwire", "handshake-and-messages", bytes([1, 7, 200]) + handshake + messages)
write("peerwire", "messages-only", bytes([0, 3, 1]) + messages)
write("peerwire", "bitfield-large-limit", bytes([2, 255, 255]) + msg(5, b"\xaa" * 300))

# extension message payloads
write("extension", "handshake", benc({"m": {"ut_metadata": 1, "ut_pex": 2}, "p": 6881, "v": "Burrow 1.0",
                                     "yourip": bytes([10, 0, 0, 2]), "reqq": 250, "metadata_size": 31000,
                                     "upload_only": 1, "ipv6": bytes(16)}))
write("extension", "metadata-request", benc({"msg_type": 0, "piece": 1}))
write("extension", "metadata-reject", benc({"msg_type": 2, "piece": 0}))
write("extension", "metadata-data", benc({"msg_type": 1, "piece": 0, "total_size": 40}) + benc({"name": "x", "length": 1})[:40].ljust(40, b"e"))
write("extension", "pex", benc({"added": bytes([10, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0x1a, 0xe2]), "added.f": bytes([1, 2]),
                                "added6": bytes(15) + bytes([1, 0x1a, 0xe1]), "added6.f": bytes([0x10]),
                                "dropped": bytes([192, 168, 1, 1, 0, 80])}))

# HTTP tracker bodies
compact = bytes([10, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0x1a, 0xe2])
write("http-tracker", "compact", benc({"interval": 1800, "min interval": 60, "complete": 3, "incomplete": 5,
                                       "peers": compact, "peers6": bytes(15) + bytes([1, 0x1a, 0xe1]),
                                       "external ip": bytes([203, 0, 113, 7]), "tracker id": "abc"}))
write("http-tracker", "dictionaries", benc({"interval": 900, "warning message": "slow down",
                                            "peers": [{"ip": "10.0.0.3", "port": 6881, "peer id": "x" * 20},
                                                      {"ip": "::1", "port": 51413}]}))
write("http-tracker", "failure", benc({"failure reason": "unregistered torrent"}))

# UDP tracker datagrams: flags byte (bit 0: IPv6), then the datagram
write("udp-tracker", "connect", bytes([0]) + struct.pack(">IIQ", 0, 0x1234, 0x41727101980))
write("udp-tracker", "announce", bytes([0]) + struct.pack(">IIIII", 1, 0x1234, 1800, 4, 9) + compact)
write("udp-tracker", "announce-ipv6", bytes([1]) + struct.pack(">IIIII", 1, 7, 600, 0, 1) + bytes(15) + bytes([1, 0x1a, 0xe1]))
write("udp-tracker", "error", bytes([0]) + struct.pack(">II", 3, 0x1234) + b"torrent not registered")

# DNS responses
def qname(name): return b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
def rr(name, rtype, data): return name + struct.pack(">HHIH", rtype, 1, 300, len(data)) + data
header = lambda an, flags=0x8180: struct.pack(">HHHHHH", 0xbeef, flags, 1, an, 0, 0)
question = qname("tracker.example.org") + struct.pack(">HH", 1, 1)
write("dns", "a", header(2) + question + rr(b"\xc0\x0c", 1, bytes([93, 184, 216, 34])) + rr(b"\xc0\x0c", 1, bytes([10, 0, 0, 1])))
write("dns", "cname-chain", header(2) + question + rr(b"\xc0\x0c", 5, qname("edge.cdn.example")) +
      rr(b"\xc0\x31", 1, bytes([198, 51, 100, 1])))
write("dns", "aaaa", header(1) + qname("peer.example") + struct.pack(">HH", 28, 1) + rr(b"\xc0\x0c", 28, bytes(15) + b"\x01"))
write("dns", "nxdomain", header(0, 0x8183) + question)

# Kernel interface messages: byte 0 = rtnetlink (host order), byte 1 = PF_ROUTE
def nlmsg(mtype, body, flags=2): return struct.pack("=IHHII", 16 + len(body), mtype, flags, 1, 0) + body + bytes((-len(body)) % 4)
def rta(atype, data): return struct.pack("=HH", 4 + len(data), atype) + data + bytes((-len(data)) % 4)
link = nlmsg(16, struct.pack("=BBHiII", 0, 0, 1, 2, 0x10043, 0) + rta(3, b"wg0\0"))
addr4 = nlmsg(20, struct.pack("=BBBBI", 2, 24, 0, 0, 2) + rta(2, bytes([10, 8, 0, 2])) + rta(8, struct.pack("=I", 0x80)))
addr6 = nlmsg(20, struct.pack("=BBBBI", 10, 64, 0, 0, 2) + rta(1, bytes([0xfe, 0x80]) + bytes(13) + b"\x01"))
route = nlmsg(24, struct.pack("=BBBBBBBBI", 2, 0, 0, 0, 254, 3, 0, 1, 0) + rta(15, struct.pack("=I", 254))
              + rta(6, struct.pack("=I", 100)) + rta(4, struct.pack("=i", 2)))
multipath = nlmsg(24, struct.pack("=BBBBBBBBI", 10, 0, 0, 0, 254, 3, 0, 1, 0)
                  + rta(9, struct.pack("=HBBi", 8, 0, 0, 2) + struct.pack("=HBBi", 8, 0, 0, 3)))
write("netlink", "dump", bytes([0]) + link + addr4 + addr6 + route + multipath + nlmsg(3, struct.pack("=i", 0)))
write("netlink", "removals", bytes([0]) + nlmsg(17, struct.pack("=BBHiII", 0, 0, 1, 2, 0, 0)) + nlmsg(21, addr4[16:]) + nlmsg(2, struct.pack("=i", -19) + bytes(16)))
ifinfo = struct.pack("=HBBiiH", 14, 5, 0x0E, 0, 0x41, 4)
sin = bytes([16, 2, 0, 0, 10, 0, 0, 2]) + bytes(8)
mask = bytes([8, 2, 0, 0, 255, 255, 255, 0])
ifam = struct.pack("=HBBiiHHi", 20 + len(mask) + len(sin), 5, 0x0C, (1 << 2) | (1 << 5), 0, 4, 0, 0) + mask + sin
announce = struct.pack("=HBBH16sH", 24, 5, 0x11, 4, b"utun3", 1)
write("netlink", "routing-socket", bytes([1]) + ifinfo + ifam + announce)

#!/usr/bin/env python3
"""Prints the smallest value recorded in a kreplay report's histogram (HdrHistogram V2 +
deflate, base64), e.g. the earliest send lag of a runner, in the histogram's unit (µs).
Usage: hdr_min.py REPORT.json [PATH]   (PATH default: kreplay.histograms.sendLag)"""
import base64, json, math, struct, sys, zlib

def zigzag_counts(payload):
    i, out = 0, []
    while i < len(payload):
        shift = value = 0
        while True:
            b = payload[i]; i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80 or shift >= 63:
                break
        out.append((value >> 1) ^ -(value & 1))
    return out

def histogram_min(text):
    raw = base64.b64decode(text)
    cookie, length = struct.unpack(">II", raw[:8])
    assert cookie in (0x1C849304, 0x1C849314), "not a compressed V2 histogram"
    body = zlib.decompress(raw[8:8 + length])
    _, payload_len, _, digits, lowest, _, _ = struct.unpack(">IIIIqqd", body[:40])
    unit = int(math.floor(math.log2(lowest)))
    sub_mag = int(math.ceil(math.log2(2 * 10 ** digits)))
    half_mag = sub_mag - 1
    half = 1 << half_mag
    index = 0
    for c in zigzag_counts(body[40:40 + payload_len]):
        if c < 0:
            index += -c
            continue
        if c > 0:
            bucket = (index >> half_mag) - 1
            sub = (index & (half - 1)) + half
            if bucket < 0:
                sub -= half
                bucket = 0
            return sub << (bucket + unit)
        index += 1
    return None

report = json.load(open(sys.argv[1]))
node = report
for key in (sys.argv[2] if len(sys.argv) > 2 else "kreplay.histograms.sendLag").split("."):
    node = node[key]
print(histogram_min(node))

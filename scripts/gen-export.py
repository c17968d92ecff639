#!/usr/bin/env python3
"""Writes a synthetic `inkwire export` (docs/import-export.md) for benchmarks: one author,
POSTS published posts, COMMENTS comments spread over them (every fifth a reply).

    scripts/gen-export.py 100000 20 > /tmp/100k.ndjson
"""
import json
import sys
import uuid

comments = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
posts = int(sys.argv[2]) if len(sys.argv) > 2 else 20
seq = 0


def ident(kind):
    # Time-ordered like UUIDv7 (prefix fixed, counter increasing), unique per kind.
    return str(uuid.UUID(f"0193a1b2{kind:04x}7000{0x8000 | (seq >> 48) & 0x3fff:04x}{seq & 0xffffffffffff:012x}"))


def event(stream, version, etype, data, actor="0193a1b2-2222-7000-8000-000000000001"):
    global seq
    seq += 1
    second = seq // 1000
    print(json.dumps({
        "event_id": ident(0), "stream_id": stream, "stream_version": version,
        "occurred_at": f"2026-11-{1 + second // 86400 % 28:02d}T{second // 3600 % 24:02d}:{second // 60 % 60:02d}:{second % 60:02d}.{seq % 1000:03d}Z",
        "actor": {"user_id": actor, "name": "Bench"}, "correlation_id": ident(1),
        "causation_id": None, "traceparent": None, "event_type": etype, "event_version": 1, "data": data,
    }, separators=(",", ":")))


print(json.dumps({"format": "inkwire-export", "version": 1, "exported_at": "2026-12-05T00:00:00Z", "credentials": False}))
author = "0193a1b2-2222-7000-8000-000000000001"
event(author, 1, "user.registered", {"username": "bench-author", "display_name": "Bench Author"}, author)
event(author, 2, "user.role_granted", {"role": "author"}, author)
per_post = comments // posts
for p in range(posts):
    post = f"0193a1b2-1111-7000-8000-{p:012x}"
    event(post, 1, "post.drafted", {"author_id": author, "title": f"Post {p}", "slug": f"bench-post-{p}",
                                   "body_markdown": "Benchmark *post*.", "tags": ["bench"], "allow_anonymous_comments": True})
    event(post, 2, "post.published", {})
    ids = []
    for c in range(per_post):
        cid = f"0193a1b2-4444-7000-{0x8000 | p:04x}-{c:012x}"
        parent = ids[-1] if c % 5 == 4 and ids else None
        event(post, 3 + c, "comment.added", {"comment_id": cid, "parent_id": parent, "author_id": None,
                                             "author_name": f"reader {c % 97}", "body": f"Comment {c} on post {p}, with *some* markdown."})
        ids.append(cid)

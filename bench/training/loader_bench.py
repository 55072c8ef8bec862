#!/usr/bin/env python3
"""The training-job test: a PyTorch DataLoader over 64 MiB shard objects feeding a GPU model step,
from Kiln (8 MiB ranged GETs, as Mountpoint and s3torchconnector issue them) and from local files
holding the same bytes. Reports samples/s and GPU busy time for both, and the ratio (target: Kiln
at least 90 % of the local-file rate).

Only the Python standard library and torch are needed (SigV4 is signed here, no boto3), so it runs
on a bare GPU machine next to a Kiln started from the carried node binary:

  python3 bench/training/loader_bench.py --endpoint http://127.0.0.1:9000 --bucket train \
      --local-dir /data/shards --shards 32 [--upload] [--workers 8] [--seconds 60] [--device cuda]

--upload writes the shards (random bytes) to the local dir and to Kiln first.
"""
import argparse
import datetime
import hashlib
import hmac
import http.client
import json
import os
import sys
import time
import urllib.parse

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

MiB = 1024 * 1024


class SigV4:
    """Header-signed S3 requests with UNSIGNED-PAYLOAD; the signing key is derived once a day."""

    def __init__(self, access_key, secret_key, region="us-east-1"):
        self.ak, self.sk, self.region = access_key, secret_key, region
        self.day, self.key = None, None

    def headers(self, method, host, path, query="", extra=None):
        now = datetime.datetime.now(datetime.timezone.utc)
        amz, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        if day != self.day:
            k = hmac.new(("AWS4" + self.sk).encode(), day.encode(), hashlib.sha256).digest()
            for part in (self.region, "s3", "aws4_request"):
                k = hmac.new(k, part.encode(), hashlib.sha256).digest()
            self.day, self.key = day, k
        h = {"host": host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": amz}
        h.update({k.lower(): v for k, v in (extra or {}).items()})
        names = sorted(h)
        canonical = "\n".join([method, path, query] + [f"{n}:{h[n]}" for n in names] + ["", ";".join(names), "UNSIGNED-PAYLOAD"])
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        sig = hmac.new(self.key, to_sign.encode(), hashlib.sha256).hexdigest()
        h["authorization"] = f"AWS4-HMAC-SHA256 Credential={self.ak}/{scope}, SignedHeaders={';'.join(names)}, Signature={sig}"
        del h["host"]
        return h


class KilnReader:
    """One keep-alive connection per DataLoader worker; reads [start, end) of an object."""

    def __init__(self, endpoint, access_key, secret_key):
        u = urllib.parse.urlparse(endpoint)
        self.host, self.port = u.hostname, u.port or 80
        self.hostport = f"{self.host}:{self.port}"
        self.signer = SigV4(access_key, secret_key)
        self.conn = None

    def _conn(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        return self.conn

    def request(self, method, path, body=None, headers=None):
        h = self.signer.headers(method, self.hostport, path, extra=headers)
        if body is not None:
            h["content-length"] = str(len(body))
        for attempt in (0, 1):
            try:
                c = self._conn()
                c.request(method, path, body=body, headers=h)
                r = c.getresponse()
                data = r.read()
                return r.status, data
            except (http.client.HTTPException, OSError):
                self.conn = None
                if attempt:
                    raise

    def read_range(self, bucket, key, start, end):
        status, data = self.request("GET", f"/{bucket}/{key}", headers={"range": f"bytes={start}-{end - 1}"})
        if status != 206 or len(data) != end - start:
            raise IOError(f"GET {key} [{start},{end}): HTTP {status}, {len(data)} bytes")
        return data


class ShardSamples(IterableDataset):
    """Samples of `sample_bytes` cut from shards, read `chunk` bytes at a time; shards split over workers."""

    def __init__(self, shards, shard_bytes, sample_bytes, chunk, source, args):
        self.shards, self.shard_bytes, self.sample_bytes, self.chunk = shards, shard_bytes, sample_bytes, chunk
        self.source, self.args = source, args

    def __iter__(self):
        info = get_worker_info()
        wid, n = (info.id, info.num_workers) if info else (0, 1)
        reader = KilnReader(self.args.endpoint, self.args.access_key, self.args.secret_key) if self.source == "kiln" else None
        epoch = 0
        while True:  # the training loop decides when to stop
            for i in range(wid, len(self.shards), n):
                name = self.shards[(i + epoch) % len(self.shards)]
                fh = open(os.path.join(self.args.local_dir, name), "rb", buffering=0) if reader is None else None
                try:
                    for off in range(0, self.shard_bytes, self.chunk):
                        end = min(off + self.chunk, self.shard_bytes)
                        if reader is not None:
                            buf = reader.read_range(self.args.bucket, f"{self.args.prefix}{name}", off, end)
                        else:
                            fh.seek(off)
                            buf = fh.read(end - off)
                        t = torch.frombuffer(bytearray(buf), dtype=torch.uint8)
                        for s in range(0, len(t) - self.sample_bytes + 1, self.sample_bytes):
                            yield t[s:s + self.sample_bytes]
                finally:
                    if fh:
                        fh.close()
            epoch += 1


class Model(torch.nn.Module):
    """A small convolutional network: enough GPU work per sample to make loader stalls visible."""

    def __init__(self, side):
        super().__init__()
        self.side = side
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 5, stride=2, padding=2), torch.nn.ReLU(),
            torch.nn.Conv2d(32, 64, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(64, 64, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(64 * 16, 10))

    def forward(self, x):
        x = x.view(-1, 1, self.side, self.side).float().div_(255.0)
        return self.net(x)


def train(source, shards, args, device):
    ds = ShardSamples(shards, args.shard_mib * MiB, args.sample_kib * 1024, args.chunk_mib * MiB, source, args)
    dl = DataLoader(ds, batch_size=args.batch, num_workers=args.workers, pin_memory=device.type == "cuda",
                    prefetch_factor=4 if args.workers else None, persistent_workers=False)
    side = int((args.sample_kib * 1024) ** 0.5)
    model = Model(side).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    samples, busy, steps = 0, 0.0, 0
    it = iter(dl)
    next(it)  # start-up (worker spawn, first fetch) is not counted
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < args.seconds and steps < args.max_steps:
        x = next(it).to(device, non_blocking=True)
        s0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), torch.zeros(len(x), dtype=torch.long, device=device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        busy += time.perf_counter() - s0
        samples += len(x)
        steps += 1
    wall = time.perf_counter() - t0
    del it, dl
    return {"source": source, "samples_per_s": samples / wall, "MiB_per_s": samples * args.sample_kib / 1024 / wall,
            "gpu_busy": busy / wall, "steps": steps, "seconds": wall}


def upload(shards, args):
    os.makedirs(args.local_dir, exist_ok=True)
    r = KilnReader(args.endpoint, args.access_key, args.secret_key)
    status, _ = r.request("PUT", f"/{args.bucket}")
    if status not in (200, 409):
        raise IOError(f"create bucket: HTTP {status}")
    for name in shards:
        data = os.urandom(args.shard_mib * MiB)
        with open(os.path.join(args.local_dir, name), "wb") as f:
            f.write(data)
        status, _ = r.request("PUT", f"/{args.bucket}/{args.prefix}{name}", body=data)
        if status != 200:
            raise IOError(f"PUT {name}: HTTP {status}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", default="http://127.0.0.1:9000")
    p.add_argument("--access-key", default=os.environ.get("AWS_ACCESS_KEY_ID", "kilnadmin"))
    p.add_argument("--secret-key", default=os.environ.get("AWS_SECRET_ACCESS_KEY", "kilnadmin-change-me"))
    p.add_argument("--bucket", default="train")
    p.add_argument("--prefix", default="shards/")
    p.add_argument("--local-dir", required=True)
    p.add_argument("--shards", type=int, default=32)
    p.add_argument("--shard-mib", type=int, default=64)
    p.add_argument("--chunk-mib", type=int, default=8)
    p.add_argument("--sample-kib", type=int, default=256)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--max-steps", type=int, default=10**9)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--upload", action="store_true")
    p.add_argument("--sources", default="local,kiln")
    args = p.parse_args()
    shards = [f"shard-{i:05d}.bin" for i in range(args.shards)]
    if args.upload:
        upload(shards, args)
    device = torch.device(args.device)
    results = [train(s, shards, args, device) for s in args.sources.split(",")]
    out = {"device": str(device), "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
           "torch": torch.__version__, "args": vars(args), "results": results}
    by = {r["source"]: r for r in results}
    if "kiln" in by and "local" in by:
        out["kiln_vs_local"] = by["kiln"]["samples_per_s"] / by["local"]["samples_per_s"]
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()

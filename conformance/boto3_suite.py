"""Kiln conformance through boto3 with its shipped defaults (flexible checksums on).

Run against any S3 endpoint:

    KILN_ENDPOINT=http://127.0.0.1:9000 AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
        python3 -m pytest -q -p no:cacheprovider conformance/boto3_suite.py

Every test works in its own freshly created bucket (the `bucket` fixture) and removes it,
with every object version and unfinished upload in it, afterwards.
"""
import hashlib
import base64
import os
import pathlib
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["KILN_ENDPOINT"]
REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
MiB = 1024 * 1024


def client(key=None, secret=None):
    """A boto3 S3 client with boto3's defaults; only endpoint, region and credentials are set."""
    return boto3.client(
        "s3", endpoint_url=ENDPOINT, region_name=REGION,
        aws_access_key_id=key or os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secret or os.environ["AWS_SECRET_ACCESS_KEY"],
    )


def err(excinfo):
    """(code, HTTP status) of a ClientError caught by pytest.raises."""
    r = excinfo.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def new_name(prefix="b3"):
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def empty_and_delete(s3, name):
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        objs = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if objs:
            s3.delete_objects(Bucket=name, Delete={"Objects": objs, "Quiet": True})
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=name):
        for u in page.get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=u["Key"], UploadId=u["UploadId"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture(scope="module")
def s3():
    return client()


@pytest.fixture
def bucket(s3):
    name = new_name()
    s3.create_bucket(Bucket=name)
    yield name
    empty_and_delete(s3, name)


@pytest.fixture
def scratch():
    """A mktemp directory, removed afterwards (pytest's tmp_path keeps its last runs' files)."""
    with tempfile.TemporaryDirectory(prefix="kiln-boto3-") as d:
        yield pathlib.Path(d)


def md5(b):
    return hashlib.md5(b).hexdigest()


def b64(b):
    return base64.b64encode(b).decode()


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli), computed here: botocore needs the optional awscrt package for it."""
    crc = 0xFFFFFFFF
    t = _CRC32C
    for byte in data:
        crc = t[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return (crc ^ 0xFFFFFFFF).to_bytes(4, "big")


def put_many(s3, bucket, keys, body=b""):
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=body), keys))


# --- buckets ---------------------------------------------------------------------------------

def test_bucket_create_list_head_delete(s3):
    name = new_name()
    s3.create_bucket(Bucket=name)
    try:
        assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] in (None, REGION if REGION != "us-east-1" else None)
        s3.put_object(Bucket=name, Key="x", Body=b"1")
        with pytest.raises(ClientError) as e:
            s3.delete_bucket(Bucket=name)
        assert err(e) == ("BucketNotEmpty", 409)
        s3.delete_object(Bucket=name, Key="x")
        assert s3.delete_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 204
    except Exception:
        empty_and_delete(s3, name)
        raise
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert err(e) == ("404", 404)  # HEAD has no body, so botocore reports the status as the code
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="Not_A_Valid_Bucket")
    assert err(e) == ("InvalidBucketName", 400)
    for call in (lambda: s3.get_object(Bucket=name, Key="x"),
                 lambda: s3.put_object(Bucket=name, Key="x", Body=b"1"),
                 lambda: s3.list_objects_v2(Bucket=name),
                 lambda: s3.delete_bucket(Bucket=name)):
        with pytest.raises(ClientError) as e:
            call()
        assert err(e) == ("NoSuchBucket", 404)


# --- objects ---------------------------------------------------------------------------------

def test_object_put_get_head_delete(s3, bucket):
    body = b"hello, kiln\n" * 100
    put = s3.put_object(Bucket=bucket, Key="docs/readme.txt", Body=body, ContentType="text/plain; charset=utf-8",
                        Metadata={"team": "vision", "Run-Id": "42"}, CacheControl="max-age=60",
                        ContentDisposition='attachment; filename="r.txt"', ContentLanguage="en")
    assert put["ETag"] == f'"{md5(body)}"'
    got = s3.get_object(Bucket=bucket, Key="docs/readme.txt")
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/plain; charset=utf-8"
    assert got["ContentLength"] == len(body)
    assert got["ETag"] == put["ETag"]
    assert got["Metadata"] == {"team": "vision", "run-id": "42"}  # S3 lower-cases metadata names
    assert got["CacheControl"] == "max-age=60"
    assert got["ContentDisposition"] == 'attachment; filename="r.txt"'
    assert got["ContentLanguage"] == "en"
    head = s3.head_object(Bucket=bucket, Key="docs/readme.txt")
    assert head["ContentLength"] == len(body)
    assert head["ContentType"] == "text/plain; charset=utf-8"
    assert head["Metadata"] == {"team": "vision", "run-id": "42"}
    assert head["ETag"] == put["ETag"]
    assert abs(head["LastModified"] - datetime.now(timezone.utc)) < timedelta(minutes=10)

    # Overwrite replaces body and metadata; no content type given means binary/octet-stream.
    s3.put_object(Bucket=bucket, Key="docs/readme.txt", Body=b"v2")
    head = s3.head_object(Bucket=bucket, Key="docs/readme.txt")
    assert (head["ContentLength"], head["Metadata"], head["ContentType"]) == (2, {}, "binary/octet-stream")

    assert s3.delete_object(Bucket=bucket, Key="docs/readme.txt")["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="docs/readme.txt")
    assert err(e) == ("404", 404)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="docs/readme.txt")
    assert err(e) == ("NoSuchKey", 404)
    # Deleting a key that does not exist succeeds, as on S3.
    assert s3.delete_object(Bucket=bucket, Key="docs/readme.txt")["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_awkward_keys_and_empty_object(s3, bucket):
    keys = ["empty", "space and+plus", "unicodé/ключ/鍵", "a//double/slash", "q?x=1&y=%20", "~tilde*star(paren)'", "trailing/"]
    for i, k in enumerate(keys):
        s3.put_object(Bucket=bucket, Key=k, Body=b"" if k == "empty" else k.encode() * (i + 1))
    for i, k in enumerate(keys):
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == (b"" if k == "empty" else k.encode() * (i + 1))
    assert s3.head_object(Bucket=bucket, Key="empty")["ContentLength"] == 0
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == sorted(keys, key=lambda k: k.encode())
    # botocore asks for EncodingType=url by itself and decodes; asked for explicitly, the keys come back encoded.
    listed = [urllib.parse.unquote_plus(o["Key"]) for o in s3.list_objects_v2(Bucket=bucket, EncodingType="url")["Contents"]]
    assert listed == sorted(keys, key=lambda k: k.encode())


# --- multipart transfer ----------------------------------------------------------------------

def test_upload_download_file_multipart(s3, bucket, scratch):
    blob = os.urandom(40 * MiB)
    src = scratch / "big.bin"
    src.write_bytes(blob)
    cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=4)
    s3.upload_file(str(src), bucket, "big.bin", Config=cfg, ExtraArgs={"ContentType": "application/x-test", "Metadata": {"src": "boto3"}})
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(blob)
    assert head["ETag"].endswith('-5"')
    assert head["ContentType"] == "application/x-test"
    assert head["Metadata"] == {"src": "boto3"}
    part = s3.head_object(Bucket=bucket, Key="big.bin", PartNumber=2)
    assert (part["ContentLength"], part["PartsCount"]) == (8 * MiB, 5)
    assert part["ContentRange"] == f"bytes {8 * MiB}-{16 * MiB - 1}/{len(blob)}"
    dst = scratch / "back.bin"
    s3.download_file(bucket, "big.bin", str(dst), Config=cfg)
    assert hashlib.sha256(dst.read_bytes()).hexdigest() == hashlib.sha256(blob).hexdigest()
    # A range across the boundary between parts 1 and 2.
    got = s3.get_object(Bucket=bucket, Key="big.bin", Range=f"bytes={8 * MiB - 10}-{8 * MiB + 9}")
    assert got["Body"].read() == blob[8 * MiB - 10:8 * MiB + 10]
    got = s3.get_object(Bucket=bucket, Key="big.bin", PartNumber=5)
    assert (got["ContentLength"], got["PartsCount"]) == (8 * MiB, 5)
    assert got["Body"].read() == blob[32 * MiB:]
    # A managed copy of an object over the threshold goes through UploadPartCopy with ranges.
    s3.copy({"Bucket": bucket, "Key": "big.bin"}, bucket, "big-copy.bin", Config=TransferConfig(
        multipart_threshold=8 * MiB, multipart_chunksize=16 * MiB, max_concurrency=4))
    copied = s3.head_object(Bucket=bucket, Key="big-copy.bin")
    assert copied["ContentLength"] == len(blob) and copied["ETag"].endswith('-3"')
    got = s3.get_object(Bucket=bucket, Key="big-copy.bin")["Body"].read()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(blob).hexdigest()
    attrs = s3.get_object_attributes(Bucket=bucket, Key="big.bin", ObjectAttributes=["ObjectParts", "ObjectSize", "ETag"])
    assert attrs["ObjectSize"] == len(blob)
    assert attrs["ObjectParts"]["TotalPartsCount"] == 5
    assert f'"{attrs["ETag"]}"' == head["ETag"]  # GetObjectAttributes gives the ETag unquoted
    # s3transfer asks for CRC32 per part; the object's checksum is the one S3 defines for its type.
    sums = s3.head_object(Bucket=bucket, Key="big.bin", ChecksumMode="ENABLED")
    if sums.get("ChecksumCRC32"):
        if sums["ChecksumType"] == "COMPOSITE":
            crcs = b"".join(zlib.crc32(blob[i:i + 8 * MiB]).to_bytes(4, "big") for i in range(0, len(blob), 8 * MiB))
            assert sums["ChecksumCRC32"] == b64(zlib.crc32(crcs).to_bytes(4, "big")) + "-5"
        else:
            assert sums["ChecksumCRC32"] == b64(zlib.crc32(blob).to_bytes(4, "big"))


def test_ranged_get(s3, bucket):
    blob = os.urandom(3 * MiB + 17)
    size = len(blob)
    s3.put_object(Bucket=bucket, Key="r", Body=blob)
    cases = [
        ("bytes=0-0", 0, 0),
        ("bytes=0-99", 0, 99),
        ("bytes=1048570-2097160", 1048570, 2097160),
        (f"bytes={size - 1}-{size - 1}", size - 1, size - 1),
        ("bytes=3145000-", 3145000, size - 1),
        ("bytes=-100", size - 100, size - 1),
        ("bytes=-1", size - 1, size - 1),
        (f"bytes=-{size + 1000}", 0, size - 1),  # suffix longer than the object: the whole object
        (f"bytes=100-{size + 5000}", 100, size - 1),  # end past the object is clamped
    ]
    for rng, first, last in cases:
        got = s3.get_object(Bucket=bucket, Key="r", Range=rng)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206, rng
        assert got["ContentRange"] == f"bytes {first}-{last}/{size}", rng
        assert got["ContentLength"] == last - first + 1, rng
        assert got["Body"].read() == blob[first:last + 1], rng
    for rng in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}"):
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=bucket, Key="r", Range=rng)
        assert err(e) == ("InvalidRange", 416)


# --- listings and paginators -----------------------------------------------------------------

def test_list_objects_v2_paginator(s3, bucket):
    keys = [f"dir{i % 7}/file{i:04d}" for i in range(1200)] + ["top-a", "top-b"]
    put_many(s3, bucket, keys)
    want = sorted(keys)
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 250}))
    assert [p["KeyCount"] for p in pages] == [250, 250, 250, 250, 202]
    assert [p["IsTruncated"] for p in pages] == [True, True, True, True, False]
    assert [o["Key"] for p in pages for o in p["Contents"]] == want
    assert all(o["Size"] == 0 and o["ETag"] == f'"{md5(b"")}"' for p in pages for o in p["Contents"])

    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 3}))
    assert [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])] == [f"dir{i}/" for i in range(7)]
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == ["top-a", "top-b"]
    assert len(pages) == 3  # 9 entries, 3 per page

    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="dir3/", PaginationConfig={"PageSize": 100}))
    assert [o["Key"] for p in pages for o in p["Contents"]] == [k for k in want if k.startswith("dir3/")]

    got = s3.list_objects_v2(Bucket=bucket, StartAfter="dir6/file1189")
    assert [o["Key"] for o in got["Contents"]] == ["dir6/file1196", "top-a", "top-b"]
    got = s3.list_objects_v2(Bucket=bucket, MaxKeys=0)
    assert got["KeyCount"] == 0 and "Contents" not in got


def test_list_objects_v1_paginator(s3, bucket):
    keys = [f"p{i % 5}/k{i:04d}" for i in range(1200)]
    put_many(s3, bucket, keys)
    pages = list(s3.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 300}))
    assert len(pages) == 4
    assert [o["Key"] for p in pages for o in p["Contents"]] == sorted(keys)
    pages = list(s3.get_paginator("list_objects").paginate(Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 2}))
    assert [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])] == [f"p{i}/" for i in range(5)]


def test_list_object_versions_paginator(s3, bucket):
    keys = [f"v/{i:03d}" for i in range(40)]
    put_many(s3, bucket, keys)
    versions = [(v["Key"], v["VersionId"], v["IsLatest"]) for p in s3.get_paginator("list_object_versions").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 7}) for v in p.get("Versions", [])]
    assert versions == [(k, "null", True) for k in keys]

    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    ids = {}
    for k in ("a", "b", "c"):
        ids[k] = [s3.put_object(Bucket=bucket, Key=f"w/{k}", Body=f"{k}{n}".encode())["VersionId"] for n in range(3)]
    marker = s3.delete_object(Bucket=bucket, Key="w/b")
    assert marker["DeleteMarker"] is True
    pages = list(s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix="w/", PaginationConfig={"PageSize": 2}))
    assert len(pages) == 5  # 9 versions and 1 delete marker, 2 per page
    got = [(v["Key"], v["VersionId"]) for p in pages for v in p.get("Versions", [])]
    assert sorted(got) == sorted((f"w/{k}", vid) for k in ids for vid in ids[k])
    for k in ids:  # newest first within a key
        assert [vid for key, vid in got if key == f"w/{k}"] == list(reversed(ids[k]))
    markers = [(m["Key"], m["VersionId"], m["IsLatest"]) for p in pages for m in p.get("DeleteMarkers", [])]
    assert markers == [("w/b", marker["VersionId"], True)]
    pages = list(s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 1}))
    assert [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])] == ["v/", "w/"]
    old = s3.get_object(Bucket=bucket, Key="w/a", VersionId=ids["a"][0])
    assert old["Body"].read() == b"a0"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="w/b")
    assert err(e) == ("NoSuchKey", 404)


def test_multipart_listings(s3, bucket):
    uploads = {}
    for k in ("mp/one", "mp/two", "mp/three", "other/four", "other/five"):
        uploads[k] = s3.create_multipart_upload(Bucket=bucket, Key=k, ContentType="application/x-mp")["UploadId"]
    listed = [(u["Key"], u["UploadId"]) for pg in s3.get_paginator("list_multipart_uploads").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 2}) for u in pg.get("Uploads", [])]
    assert sorted(listed) == sorted(uploads.items())
    assert [u[0] for u in listed] == sorted(uploads)
    listed = [u["Key"] for pg in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix="mp/") for u in pg.get("Uploads", [])]
    assert listed == ["mp/one", "mp/three", "mp/two"]

    uid = uploads["mp/one"]
    parts, blobs = [], []
    for n in range(1, 5):
        blob = os.urandom(5 * MiB if n < 4 else 1234)
        blobs.append(blob)
        r = s3.upload_part(Bucket=bucket, Key="mp/one", UploadId=uid, PartNumber=n, Body=blob)
        assert r["ETag"] == f'"{md5(blob)}"'
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    pages = list(s3.get_paginator("list_parts").paginate(Bucket=bucket, Key="mp/one", UploadId=uid, PaginationConfig={"PageSize": 1}))
    assert len(pages) == 4
    listed = [p for pg in pages for p in pg.get("Parts", [])]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed] == [(n + 1, f'"{md5(b)}"', len(b)) for n, b in enumerate(blobs)]

    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp/one", UploadId=uid, MultipartUpload={"Parts": parts})
    whole_md5 = hashlib.md5(b"".join(bytes.fromhex(md5(b)) for b in blobs)).hexdigest()
    assert done["ETag"] == f'"{whole_md5}-4"'
    got = s3.get_object(Bucket=bucket, Key="mp/one")
    assert got["ContentType"] == "application/x-mp"
    assert got["Body"].read() == b"".join(blobs)
    s3.abort_multipart_upload(Bucket=bucket, Key="mp/two", UploadId=uploads["mp/two"])
    left = sorted(u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
    assert left == ["mp/three", "other/five", "other/four"]

    for call in (lambda: s3.upload_part(Bucket=bucket, Key="mp/one", UploadId=uid, PartNumber=1, Body=b"x"),
                 lambda: s3.list_parts(Bucket=bucket, Key="mp/one", UploadId=uid),
                 lambda: s3.upload_part(Bucket=bucket, Key="mp/x", UploadId="no-such-upload", PartNumber=1, Body=b"x"),
                 lambda: s3.abort_multipart_upload(Bucket=bucket, Key="mp/two", UploadId=uploads["mp/two"]),
                 lambda: s3.complete_multipart_upload(Bucket=bucket, Key="mp/x", UploadId="no-such-upload",
                                                      MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"00"'}]})):
        with pytest.raises(ClientError) as e:
            call()
        assert err(e) == ("NoSuchUpload", 404)


def test_multipart_part_errors(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="small", UploadId=uid, PartNumber=1, Body=b"a" * 1000)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="small", UploadId=uid, PartNumber=2, Body=b"b" * 1000)["ETag"]
    with pytest.raises(ClientError) as e:  # every part but the last must be 5 MiB or more
        s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=uid,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert err(e) == ("EntityTooSmall", 400)
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=uid,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"0123456789abcdef0123456789abcdef"'}]})
    assert err(e) == ("InvalidPart", 400)
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=uid,
                                     MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})
    assert err(e) == ("InvalidPartOrder", 400)
    # A single short part is a valid object.
    s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=uid, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}]})
    assert s3.get_object(Bucket=bucket, Key="small")["Body"].read() == b"a" * 1000


# --- copy, delete_objects, tagging, attributes -----------------------------------------------

def test_copy_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"payload", ContentType="text/plain", Metadata={"a": "1"})
    r = s3.copy_object(Bucket=bucket, Key="same-meta", CopySource={"Bucket": bucket, "Key": "src"})
    assert r["CopyObjectResult"]["ETag"] == f'"{md5(b"payload")}"'
    h = s3.head_object(Bucket=bucket, Key="same-meta")
    assert (h["Metadata"], h["ContentType"]) == ({"a": "1"}, "text/plain")

    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"}, MetadataDirective="REPLACE",
                   Metadata={"b": "2"}, ContentType="application/json")
    h = s3.head_object(Bucket=bucket, Key="dst")
    assert (h["Metadata"], h["ContentType"], h["ContentLength"]) == ({"b": "2"}, "application/json", 7)
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"payload"

    # In place, only with REPLACE.
    s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"}, MetadataDirective="REPLACE", Metadata={"c": "3"})
    assert s3.head_object(Bucket=bucket, Key="src")["Metadata"] == {"c": "3"}
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
    assert err(e) == ("InvalidRequest", 400)

    other = new_name()
    s3.create_bucket(Bucket=other)
    try:
        s3.copy_object(Bucket=other, Key="x/y", CopySource={"Bucket": bucket, "Key": "dst"})
        assert s3.get_object(Bucket=other, Key="x/y")["Body"].read() == b"payload"
    finally:
        empty_and_delete(s3, other)
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="d2", CopySource={"Bucket": bucket, "Key": "src"}, CopySourceIfMatch='"0000"')
    assert err(e) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="d2", CopySource={"Bucket": bucket, "Key": "missing"})
    assert err(e) == ("NoSuchKey", 404)


def test_delete_objects_1000(s3, bucket):
    keys = [f"del/{i:04d}" for i in range(1100)]
    put_many(s3, bucket, keys)
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[:1000]]})
    assert sorted(d["Key"] for d in r["Deleted"]) == keys[:1000]
    assert r.get("Errors", []) == []
    left = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in p.get("Contents", [])]
    assert left == keys[1000:]
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[1000:]] + [{"Key": "never-existed"}], "Quiet": True})
    assert r.get("Deleted", []) == [] and r.get("Errors", []) == []
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    with pytest.raises(ClientError) as e:  # at most 1000 keys per request
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"k{i}"} for i in range(1001)]})
    assert err(e) == ("MalformedXML", 400)


def test_object_tagging(s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="k=v&team=ml%20ops")
    assert sorted((t["Key"], t["Value"]) for t in s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]) == [("k", "v"), ("team", "ml ops")]
    assert s3.get_object(Bucket=bucket, Key="t")["TagCount"] == 2
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "x", "Value": "y"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "x", "Value": "y"}]
    s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": f"k{i}", "Value": "v"} for i in range(11)]})
    assert err(e)[1] == 400
    with pytest.raises(ClientError) as e:
        s3.get_object_tagging(Bucket=bucket, Key="missing")
    assert err(e) == ("NoSuchKey", 404)


def test_get_object_attributes(s3, bucket):
    blob = os.urandom(4096)
    put = s3.put_object(Bucket=bucket, Key="attr", Body=blob, ChecksumAlgorithm="SHA256")
    attrs = s3.get_object_attributes(Bucket=bucket, Key="attr", ObjectAttributes=["ETag", "ObjectSize", "StorageClass", "Checksum"])
    assert attrs["ETag"] == md5(blob)
    assert attrs["ObjectSize"] == 4096
    assert attrs["StorageClass"] == "STANDARD"
    assert attrs["Checksum"]["ChecksumSHA256"] == put["ChecksumSHA256"] == b64(hashlib.sha256(blob).digest())
    assert "LastModified" in attrs
    with pytest.raises(ClientError) as e:
        s3.get_object_attributes(Bucket=bucket, Key="missing", ObjectAttributes=["ETag"])
    assert err(e) == ("NoSuchKey", 404)


# --- presigned URLs --------------------------------------------------------------------------

def test_presigned_urls(s3, bucket):
    s3.put_object(Bucket=bucket, Key="p/signed file.txt", Body=b"signed")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p/signed file.txt"}, ExpiresIn=300)
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.status == 200 and r.read() == b"signed"
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p/signed file.txt", "ResponseContentType": "text/x-over",
                                                          "ResponseContentDisposition": "attachment"}, ExpiresIn=300)
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.headers["Content-Type"] == "text/x-over"
        assert r.headers["Content-Disposition"] == "attachment"

    # The content type is part of what is signed, so the uploader must send the one presigned.
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "p/put.bin", "ContentType": "application/x-up"}, ExpiresIn=300)
    req = urllib.request.Request(url, data=b"uploaded via URL", method="PUT", headers={"Content-Type": "application/x-up"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200
    got = s3.get_object(Bucket=bucket, Key="p/put.bin")
    assert (got["Body"].read(), got["ContentType"]) == (b"uploaded via URL", "application/x-up")
    req = urllib.request.Request(url, data=b"other type", method="PUT", headers={"Content-Type": "text/plain"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in e.value.read()

    # boto3 presigns S3 URLs with its default signer; SigV4 query signing is asked for explicitly.
    v4 = boto3.client("s3", endpoint_url=ENDPOINT, region_name=REGION, config=Config(signature_version="s3v4"),
                      aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"], aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"])
    url = v4.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p/signed file.txt"}, ExpiresIn=300)
    assert "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.read() == b"signed"

    # A tampered signature and an unsigned request are refused.
    url = v4.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p/put.bin"}, ExpiresIn=300)
    head, sig = url.split("X-Amz-Signature=", 1)
    bad = head + "X-Amz-Signature=" + ("0" if sig[0] != "0" else "1") + sig[1:]
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad, timeout=30)
    assert e.value.code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in e.value.read()
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{ENDPOINT}/{bucket}/p/put.bin", timeout=30)
    assert e.value.code == 403 and b"<Code>AccessDenied</Code>" in e.value.read()


# --- conditional requests and authentication errors ------------------------------------------

def test_conditional_requests(s3, bucket):
    r = s3.put_object(Bucket=bucket, Key="c", Body=b"v1")
    etag = r["ETag"]
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"v1"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"00000000000000000000000000000000"')
    assert err(e) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert err(e) == ("304", 304)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert err(e) == ("304", 304)
    assert s3.get_object(Bucket=bucket, Key="c", IfNoneMatch='"other"')["Body"].read() == b"v1"
    past = datetime.now(timezone.utc) - timedelta(days=1)
    future = datetime.now(timezone.utc) + timedelta(days=1)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=past)
    assert err(e) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=future)
    assert err(e) == ("304", 304)
    assert s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=past)["Body"].read() == b"v1"
    # Conditional writes: If-None-Match: * refuses to overwrite, If-Match checks the current ETag.
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="c", Body=b"v2", IfNoneMatch="*")
    assert err(e) == ("PreconditionFailed", 412)
    s3.put_object(Bucket=bucket, Key="c", Body=b"v2", IfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"v2"


def test_authentication_errors(bucket):
    with pytest.raises(ClientError) as e:
        client(secret="wrong-secret-key").list_objects_v2(Bucket=bucket)
    assert err(e) == ("SignatureDoesNotMatch", 403)
    with pytest.raises(ClientError) as e:  # a signed body with a flexible checksum
        client(secret="wrong-secret-key").put_object(Bucket=bucket, Key="k", Body=b"data")
    assert err(e) == ("SignatureDoesNotMatch", 403)
    with pytest.raises(ClientError) as e:
        client(key="AKIANOSUCHKEY0000000", secret="x").list_objects_v2(Bucket=bucket)
    assert err(e) == ("InvalidAccessKeyId", 403)
    with pytest.raises(ClientError) as e:
        client(key="AKIANOSUCHKEY0000000", secret="x").list_buckets()
    assert err(e) == ("InvalidAccessKeyId", 403)


# --- flexible checksums ----------------------------------------------------------------------

DIGESTS = {
    "CRC32": lambda b: zlib.crc32(b).to_bytes(4, "big"),
    "CRC32C": crc32c,
    "SHA1": lambda b: hashlib.sha1(b).digest(),
    "SHA256": lambda b: hashlib.sha256(b).digest(),
}


@pytest.mark.parametrize("alg", ["CRC32", "CRC32C", "SHA1", "SHA256"])
def test_checksum_put_get(s3, bucket, alg):
    blob = os.urandom(300 * 1024 + 5)
    want = b64(DIGESTS[alg](blob))
    if alg == "CRC32C":
        # botocore computes CRC32C only with awscrt installed; send the value computed here instead.
        put = s3.put_object(Bucket=bucket, Key="ck", Body=blob, ChecksumCRC32C=want)
    else:
        put = s3.put_object(Bucket=bucket, Key="ck", Body=blob, ChecksumAlgorithm=alg)
    assert put[f"Checksum{alg}"] == want
    # botocore validates the body against the checksum header it gets back (CRC32C: checked here).
    got = s3.get_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert got[f"Checksum{alg}"] == want
    assert got["Body"].read() == blob
    head = s3.head_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert head[f"Checksum{alg}"] == want
    assert head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT"
    # A checksum that does not match the body is refused and nothing is stored.
    wrong = b64(DIGESTS[alg](blob + b"!"))
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="ck-bad", Body=blob, **{f"Checksum{alg}": wrong})
    assert err(e) == ("BadDigest", 400)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="ck-bad")
    assert err(e) == ("404", 404)


def test_content_md5(s3, bucket):
    body = b"integrity" * 1000
    s3.put_object(Bucket=bucket, Key="md5", Body=body, ContentMD5=b64(hashlib.md5(body).digest()))
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="md5", Body=body, ContentMD5=b64(hashlib.md5(b"other").digest()))
    assert err(e) == ("BadDigest", 400)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="md5", Body=body, ContentMD5="not-an-md5")
    assert err(e) == ("InvalidDigest", 400)
    assert s3.get_object(Bucket=bucket, Key="md5")["Body"].read() == body


def test_checksum_multipart_full_object(s3, bucket):
    blobs = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(99)]
    uid = s3.create_multipart_upload(Bucket=bucket, Key="full", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")["UploadId"]
    parts = []
    for n, blob in enumerate(blobs, 1):
        r = s3.upload_part(Bucket=bucket, Key="full", UploadId=uid, PartNumber=n, Body=blob, ChecksumAlgorithm="CRC32")
        parts.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    whole = b"".join(blobs)
    want = b64(zlib.crc32(whole).to_bytes(4, "big"))
    done = s3.complete_multipart_upload(Bucket=bucket, Key="full", UploadId=uid, MultipartUpload={"Parts": parts},
                                        ChecksumCRC32=want, ChecksumType="FULL_OBJECT")
    assert done["ChecksumCRC32"] == want
    got = s3.get_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")  # botocore validates CRC32
    assert (got["ChecksumCRC32"], got["ChecksumType"]) == (want, "FULL_OBJECT")
    assert got["Body"].read() == whole


def test_checksum_multipart_composite(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mpck", ChecksumAlgorithm="SHA256")["UploadId"]
    blobs = [os.urandom(5 * MiB), os.urandom(777)]
    parts = []
    for n, blob in enumerate(blobs, 1):
        r = s3.upload_part(Bucket=bucket, Key="mpck", UploadId=uid, PartNumber=n, Body=blob, ChecksumAlgorithm="SHA256")
        assert r["ChecksumSHA256"] == b64(hashlib.sha256(blob).digest())
        parts.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumSHA256": r["ChecksumSHA256"]})
    listed = s3.list_parts(Bucket=bucket, Key="mpck", UploadId=uid)["Parts"]
    assert [p["ChecksumSHA256"] for p in listed] == [p["ChecksumSHA256"] for p in parts]
    s3.complete_multipart_upload(Bucket=bucket, Key="mpck", UploadId=uid, MultipartUpload={"Parts": parts})
    composite = b64(hashlib.sha256(b"".join(hashlib.sha256(b).digest() for b in blobs)).digest()) + "-2"
    head = s3.head_object(Bucket=bucket, Key="mpck", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == composite
    assert head["ChecksumType"] == "COMPOSITE"
    got = s3.get_object(Bucket=bucket, Key="mpck", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"".join(blobs)

"""Kiln conformance through boto3 with its shipped defaults (flexible checksums on).

Run against any endpoint:  KILN_ENDPOINT=http://127.0.0.1:9000 AWS_ACCESS_KEY_ID=.. AWS_SECRET_ACCESS_KEY=.. \
    python3 -m pytest -q conformance/boto3_suite.py
"""
import hashlib
import os
import urllib.request
import uuid

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

ENDPOINT = os.environ["KILN_ENDPOINT"]
MiB = 1024 * 1024


def client(secret=None, key=None):
    return boto3.client(
        "s3", endpoint_url=ENDPOINT, region_name="us-east-1",
        aws_access_key_id=key or os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secret or os.environ["AWS_SECRET_ACCESS_KEY"],
    )


def code(e):
    return e.value.response["Error"]["Code"]


@pytest.fixture
def s3():
    return client()


@pytest.fixture
def bucket(s3):
    name = f"b3-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    yield name
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        objs = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if objs:
            s3.delete_objects(Bucket=name, Delete={"Objects": objs, "Quiet": True})
    for u in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=name, Key=u["Key"], UploadId=u["UploadId"])
    s3.delete_bucket(Bucket=name)


def data(n, seed=1):
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{i}".encode()).digest() * 64
        i += 1
    return bytes(out[:n])


def test_bucket_lifecycle(s3):
    name = f"b3-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="x", Body=b"1")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=name)
    assert code(e) == "BucketNotEmpty"
    s3.delete_object(Bucket=name, Key="x")
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=name, Key="x")
    assert code(e) == "NoSuchBucket"


def test_put_get_metadata(s3, bucket):
    s3.put_object(Bucket=bucket, Key="doc.txt", Body=b"hello", ContentType="text/plain", Metadata={"team": "vision"},
                  CacheControl="max-age=60", ContentDisposition="inline")
    r = s3.get_object(Bucket=bucket, Key="doc.txt")
    assert r["Body"].read() == b"hello"
    assert r["ContentType"] == "text/plain"
    assert r["Metadata"] == {"team": "vision"}
    assert r["CacheControl"] == "max-age=60"
    h = s3.head_object(Bucket=bucket, Key="doc.txt")
    assert h["ContentLength"] == 5
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="missing")
    assert code(e) == "NoSuchKey"


def test_transfer_multipart_roundtrip(s3, bucket, tmp_path):
    src = tmp_path / "big.bin"
    blob = data(40 * MiB + 123)
    src.write_bytes(blob)
    cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=4)
    s3.upload_file(str(src), bucket, "big.bin", Config=cfg)
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(blob)
    assert head["ETag"].endswith('-6"')
    dst = tmp_path / "back.bin"
    s3.download_file(bucket, "big.bin", str(dst), Config=cfg)
    assert hashlib.sha256(dst.read_bytes()).digest() == hashlib.sha256(blob).digest()


def test_ranged_get(s3, bucket):
    blob = data(3 * MiB + 17)
    s3.put_object(Bucket=bucket, Key="r", Body=blob)
    for rng, want in [("bytes=0-0", blob[:1]), ("bytes=1048570-2097160", blob[1048570:2097161]),
                      ("bytes=-100", blob[-100:]), ("bytes=3145000-", blob[3145000:])]:
        assert s3.get_object(Bucket=bucket, Key="r", Range=rng)["Body"].read() == want
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={len(blob)}-")
    assert code(e) == "InvalidRange"


def test_paginators(s3, bucket):
    keys = [f"dir{i % 7}/file{i:04d}" for i in range(1200)]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"")
    got = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 250}) for o in p.get("Contents", [])]
    assert got == sorted(keys)
    prefixes = [c["Prefix"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Delimiter="/") for c in p.get("CommonPrefixes", [])]
    assert prefixes == [f"dir{i}/" for i in range(7)]
    v1 = [o["Key"] for p in s3.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 300}) for o in p.get("Contents", [])]
    assert v1 == sorted(keys)
    versions = [v["Key"] for p in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, PaginationConfig={"PageSize": 400}) for v in p.get("Versions", [])]
    assert versions == sorted(keys)
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in sorted(keys)[:1000]], "Quiet": True})
    left = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in p.get("Contents", [])]
    assert left == sorted(keys)[1000:]


def test_multipart_listing(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")
    etags = []
    for n in range(1, 4):
        r = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=n, Body=data(5 * MiB, n))
        etags.append({"PartNumber": n, "ETag": r["ETag"]})
    parts = [p["PartNumber"] for pg in s3.get_paginator("list_parts").paginate(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PaginationConfig={"PageSize": 1}) for p in pg.get("Parts", [])]
    assert parts == [1, 2, 3]
    uploads = [u["UploadId"] for pg in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket) for u in pg.get("Uploads", [])]
    assert up["UploadId"] in uploads
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"], MultipartUpload={"Parts": etags})
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="mp", UploadId="nope", PartNumber=1, Body=b"x")
    assert code(e) == "NoSuchUpload"


def test_copy_tagging_attributes(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"payload", Metadata={"a": "1"}, Tagging="k=v")
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"}, MetadataDirective="REPLACE", Metadata={"b": "2"})
    assert s3.head_object(Bucket=bucket, Key="dst")["Metadata"] == {"b": "2"}
    assert s3.get_object_tagging(Bucket=bucket, Key="src")["TagSet"] == [{"Key": "k", "Value": "v"}]
    s3.put_object_tagging(Bucket=bucket, Key="dst", Tagging={"TagSet": [{"Key": "x", "Value": "y"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="dst")["TagSet"] == [{"Key": "x", "Value": "y"}]
    attrs = s3.get_object_attributes(Bucket=bucket, Key="dst", ObjectAttributes=["ETag", "ObjectSize"])
    assert attrs["ObjectSize"] == 7


def test_presigned_get(s3, bucket):
    s3.put_object(Bucket=bucket, Key="p", Body=b"signed")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=300)
    assert urllib.request.urlopen(url).read() == b"signed"


def test_conditions_and_auth_errors(s3, bucket):
    r = s3.put_object(Bucket=bucket, Key="c", Body=b"v1")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"0000"')
    assert code(e) == "PreconditionFailed"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=r["ETag"])
    assert e.value.response["Error"]["Code"] == "304"
    with pytest.raises(ClientError) as e:
        client(secret="wrong-secret").list_objects_v2(Bucket=bucket)
    assert code(e) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as e:
        client(key="NOSUCHKEY0000000000", secret="x").list_objects_v2(Bucket=bucket)
    assert code(e) == "InvalidAccessKeyId"


# CRC32C and CRC64NVME need botocore[crt], which is not installed here; the JS SDK tests cover them.
@pytest.mark.parametrize("alg", ["CRC32", "SHA1", "SHA256"])
def test_checksums(s3, bucket, alg):
    blob = data(300 * 1024, 7)
    put = s3.put_object(Bucket=bucket, Key=f"ck-{alg}", Body=blob, ChecksumAlgorithm=alg)
    assert put.get(f"Checksum{alg}")
    got = s3.get_object(Bucket=bucket, Key=f"ck-{alg}", ChecksumMode="ENABLED")
    assert got[f"Checksum{alg}"] == put[f"Checksum{alg}"]
    assert got["Body"].read() == blob

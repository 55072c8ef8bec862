#!/usr/bin/env bash
# Kiln conformance through the AWS CLI (`aws s3` and `aws s3api`), with the CLI's defaults.
#
#   KILN_ENDPOINT=http://127.0.0.1:9000 AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... bash conformance/awscli_suite.sh
#
# Each step prints PASS <name> or FAIL <name> (with the tail of its output); the script goes on
# after a failed step, ends with "awscli: N passed, M failed" and exits non-zero if any failed.
# Everything it writes locally lives in one mktemp directory, removed on exit, and the bucket it
# creates is removed too.
set -euo pipefail

: "${KILN_ENDPOINT:?KILN_ENDPOINT must name the S3 endpoint, e.g. http://127.0.0.1:9000}"
: "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}"
export AWS_PAGER=""
REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}
aws() { command aws --endpoint-url "$KILN_ENDPOINT" --region "$REGION" "$@"; }

work=$(mktemp -d)
bucket="cli-$(date +%s)-$RANDOM$RANDOM"
MiB=$((1024 * 1024))
cleanup() {
  aws s3 rb --force "s3://$bucket" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0
# step NAME FUNCTION: runs FUNCTION in a subshell with errexit on, so any failing command fails the step.
step() {
  local name=$1 rc
  shift
  set +e
  ( set -e; "$@" ) >"$work/step.log" 2>&1
  rc=$?
  set -e
  if [ "$rc" -eq 0 ]; then
    echo "PASS $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    tail -n 20 "$work/step.log" | sed 's/^/    /'
    failed=$((failed + 1))
  fi
}
# expect WHAT GOT WANT
expect() {
  if [ "$2" != "$3" ]; then echo "$1: got '$2', want '$3'"; return 1; fi
}
count() { grep -c -- "$1" || true; }

# --- s3 mb ------------------------------------------------------------------------------------
mb() {
  aws s3 mb "s3://$bucket"
  grep -q " $bucket\$" <<<"$(aws s3 ls)"
  aws s3api head-bucket --bucket "$bucket"
}
step "s3 mb" mb
if [ "$failed" -ne 0 ]; then echo "awscli: $passed passed, $failed failed"; exit 1; fi

# --- s3 cp of 60 MiB (multipart) up and down --------------------------------------------------
cp_big() {
  head -c $((60 * MiB + 7)) /dev/urandom >"$work/big.bin"
  aws s3 cp "$work/big.bin" "s3://$bucket/big/big.bin" --only-show-errors
  expect size "$(aws s3api head-object --bucket "$bucket" --key big/big.bin --query ContentLength --output text)" $((60 * MiB + 7))
  # The CLI uploads in 8 MiB parts: a multipart ETag of 8 parts.
  grep -q -- '-8"$' <<<"$(aws s3api head-object --bucket "$bucket" --key big/big.bin --query ETag --output text)"
  aws s3 cp "s3://$bucket/big/big.bin" "$work/big.back" --only-show-errors
  cmp "$work/big.bin" "$work/big.back"
  rm -f "$work/big.back"
}
step "s3 cp 60 MiB up and down" cp_big

cp_stream() {
  # About 15 MB from a pipe: the CLI cannot know the size, so it uploads multipart as it reads.
  seq 1 2000000 >"$work/stream.txt"
  aws s3 cp - "s3://$bucket/stream/seq.txt" --only-show-errors <"$work/stream.txt"
  grep -q -- '-2"$' <<<"$(aws s3api head-object --bucket "$bucket" --key stream/seq.txt --query ETag --output text)"
  aws s3 cp "s3://$bucket/stream/seq.txt" - | cmp - "$work/stream.txt"
  aws s3 rm "s3://$bucket/stream/seq.txt" --only-show-errors
}
step "s3 cp from stdin (multipart) and to stdout" cp_stream

# --- s3 sync of ~300 small files in nested directories -----------------------------------------
make_tree() {
  local root=$1 i d
  for i in $(seq 1 300); do
    d="$root/d$((i % 6))/s$((i % 4))"
    [ $((i % 25)) -eq 0 ] && d="$root/top"
    [ $((i % 50)) -eq 7 ] && d="$root/d$((i % 6))/s$((i % 4))/deeper/still"
    mkdir -p "$d"
    # Sizes 0..64 KiB, random; a few empty files and a few names with spaces.
    if [ $((i % 40)) -eq 0 ]; then : >"$d/empty $i.bin"; else head -c $(((RANDOM * 32768 + RANDOM) % 65537)) /dev/urandom >"$d/f$i.bin"; fi
  done
  # Older than any upload: the CLI compares mtimes with LastModified, which has whole seconds.
  find "$root" -type f -exec touch -d '1 hour ago' {} +
}
sync_up_down() {
  make_tree "$work/tree"
  expect "files made" "$(find "$work/tree" -type f | wc -l)" 300
  aws s3 sync "$work/tree" "s3://$bucket/tree" --only-show-errors
  aws s3 sync "s3://$bucket/tree" "$work/tree.down1" --only-show-errors
  diff -r "$work/tree" "$work/tree.down1"
  # Nothing changed, so a second sync transfers nothing.
  expect "second sync output" "$(aws s3 sync "$work/tree" "s3://$bucket/tree" --no-progress)" ""
}
step "s3 sync 300 files up and down (diff -r)" sync_up_down

sync_changes() {
  # Three changes (new size, same size with new bytes, a new file) and two deletions.
  local same=$work/tree/d2/s2/f2.bin lm stamp
  head -c 1234 /dev/urandom >"$work/tree/d1/s1/f1.bin"
  head -c "$(stat -c %s "$same")" /dev/urandom >"$same.new" && mv "$same.new" "$same"
  echo "a new file" >"$work/tree/d3/s3/new file.txt"
  rm "$work/tree/d4/s0/f4.bin" "$work/tree/top/f25.bin"
  # The CLI re-uploads a same-size file when its mtime is newer than the object's LastModified
  # (whole seconds). Stamp the changed files one second past the first upload, and let the clock
  # pass that second (a bounded wait), so the re-uploaded objects are never older than the files.
  lm=$(date -d "$(aws s3api head-object --bucket "$bucket" --key tree/d2/s2/f2.bin --query LastModified --output text)" +%s)
  stamp=$((lm + 1))
  touch -d "@$stamp" "$work/tree/d1/s1/f1.bin" "$same" "$work/tree/d3/s3/new file.txt"
  for _ in $(seq 1 50); do [ "$(date +%s)" -gt "$stamp" ] && break; sleep 0.1; done
  local out
  out=$(aws s3 sync "$work/tree" "s3://$bucket/tree" --delete --dryrun --no-progress)
  expect "dry-run uploads" "$(count '^(dryrun) upload:' <<<"$out")" 3
  expect "dry-run deletes" "$(count '^(dryrun) delete:' <<<"$out")" 2
  out=$(aws s3 sync "$work/tree" "s3://$bucket/tree" --delete --no-progress)
  expect uploads "$(count '^upload:' <<<"$out")" 3
  expect deletes "$(count '^delete:' <<<"$out")" 2
  grep -q 'tree/d2/s2/f2.bin' <<<"$out"
  expect "sync after sync" "$(aws s3 sync "$work/tree" "s3://$bucket/tree" --delete --no-progress)" ""
  aws s3 sync "s3://$bucket/tree" "$work/tree.down2" --only-show-errors
  diff -r "$work/tree" "$work/tree.down2"
}
step "s3 sync --delete transfers only the changes" sync_changes

sync_down_delete() {
  # Sync down with --delete removes the local files that are gone from the bucket.
  cp -r "$work/tree.down1" "$work/tree.down3"
  aws s3 sync "s3://$bucket/tree" "$work/tree.down3" --delete --only-show-errors
  [ ! -e "$work/tree.down3/d4/s0/f4.bin" ]
  [ -e "$work/tree.down3/d3/s3/new file.txt" ]
  expect "files" "$(find "$work/tree.down3" -type f | wc -l)" 299
}
step "s3 sync --delete down" sync_down_delete

ls_recursive() {
  expect "listed objects" "$(aws s3 ls --recursive "s3://$bucket/tree/" | wc -l)" "$(find "$work/tree" -type f | wc -l)"
  # Without --recursive: one PRE line per top-level directory.
  expect "PRE lines" "$(aws s3 ls "s3://$bucket/tree/" | count ' PRE ')" 7
}
step "s3 ls --recursive" ls_recursive

server_side_copy() {
  # Bucket to bucket: CopyObject for each key, no data through the client.
  aws s3 cp --recursive "s3://$bucket/tree" "s3://$bucket/copy" --only-show-errors
  expect "copied objects" "$(aws s3 ls --recursive "s3://$bucket/copy/" | wc -l)" "$(find "$work/tree" -type f | wc -l)"
  aws s3 sync "s3://$bucket/copy" "$work/copy.down" --only-show-errors
  diff -r "$work/tree" "$work/copy.down"
  aws s3 mv "s3://$bucket/copy/d1/s1/f1.bin" "s3://$bucket/moved/f1.bin" --only-show-errors
  aws s3 cp "s3://$bucket/moved/f1.bin" "$work/moved.bin" --only-show-errors
  cmp "$work/tree/d1/s1/f1.bin" "$work/moved.bin"
  expect "after mv" "$(aws s3 ls "s3://$bucket/copy/d1/s1/f1.bin" | wc -l)" 0
  aws s3 rm --recursive "s3://$bucket/copy" --only-show-errors
  aws s3 rm "s3://$bucket/moved/f1.bin" --only-show-errors
}
step "s3 cp --recursive bucket to bucket, s3 mv" server_side_copy

checksum_and_presign() {
  head -c 100000 /dev/urandom >"$work/ck.bin"
  local alg want got
  for alg in CRC32 SHA1 SHA256; do
    aws s3 cp "$work/ck.bin" "s3://$bucket/ck/$alg" --checksum-algorithm "$alg" --only-show-errors
    case $alg in
      CRC32) want=$(python3 -c 'import zlib,sys,base64; print(base64.b64encode(zlib.crc32(open(sys.argv[1],"rb").read()).to_bytes(4,"big")).decode())' "$work/ck.bin") ;;
      SHA1) want=$(openssl dgst -sha1 -binary "$work/ck.bin" | base64) ;;
      SHA256) want=$(openssl dgst -sha256 -binary "$work/ck.bin" | base64) ;;
    esac
    got=$(aws s3api head-object --bucket "$bucket" --key "ck/$alg" --checksum-mode ENABLED --query "Checksum$alg" --output text)
    expect "$alg" "$got" "$want"
  done
  url=$(aws s3 presign "s3://$bucket/ck/SHA256" --expires-in 300)
  curl -sSf -o "$work/ck.presigned" "$url"
  cmp "$work/ck.bin" "$work/ck.presigned"
  aws s3 rm --recursive "s3://$bucket/ck" --only-show-errors
}
step "s3 cp --checksum-algorithm, s3 presign" checksum_and_presign

# --- s3api ------------------------------------------------------------------------------------
api_object() {
  printf 'hello from the CLI\n' >"$work/h.txt"
  aws s3api put-object --bucket "$bucket" --key "api/h.txt" --body "$work/h.txt" --content-type text/plain \
    --metadata team=ml,stage=raw --cache-control max-age=30 >"$work/put.json"
  etag=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ETag"])' "$work/put.json")
  expect ETag "$etag" "\"$(md5sum <"$work/h.txt" | cut -d' ' -f1)\""
  aws s3api head-object --bucket "$bucket" --key api/h.txt >"$work/head.json"
  python3 - "$work/head.json" <<'EOF'
import json, sys
h = json.load(open(sys.argv[1]))
assert h["ContentType"] == "text/plain", h
assert h["ContentLength"] == 19, h
assert h["Metadata"] == {"team": "ml", "stage": "raw"}, h
assert h["CacheControl"] == "max-age=30", h
EOF
  aws s3api get-object --bucket "$bucket" --key api/h.txt "$work/h.back" >/dev/null
  cmp "$work/h.txt" "$work/h.back"
  aws s3api get-object --bucket "$bucket" --key api/h.txt --range bytes=6-9 "$work/h.range" >/dev/null
  expect range "$(cat "$work/h.range")" from
  if aws s3api head-object --bucket "$bucket" --key api/missing >"$work/missing.log" 2>&1; then echo "head of a missing key succeeded"; return 1; fi
  grep -q '404' "$work/missing.log"
}
step "s3api put-object / head-object / get-object" api_object

api_list() {
  aws s3api list-objects-v2 --bucket "$bucket" --prefix tree/ --max-items 5 --output json >"$work/l1.json"
  python3 - "$work/l1.json" >"$work/token" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert len(r["Contents"]) == 5, len(r["Contents"])
assert r["NextToken"], r
print(r["NextToken"])
EOF
  aws s3api list-objects-v2 --bucket "$bucket" --prefix tree/ --max-items 5 --starting-token "$(cat "$work/token")" --output json >"$work/l2.json"
  aws s3api list-objects-v2 --bucket "$bucket" --prefix tree/ --page-size 40 --output json >"$work/all.json"
  python3 - "$work/l1.json" "$work/l2.json" "$work/all.json" <<'EOF'
import json, sys
a, b, full = (json.load(open(p)) for p in sys.argv[1:])
keys = [o["Key"] for o in full["Contents"]]
assert len(keys) == 299, len(keys)
assert keys == sorted(keys, key=lambda k: k.encode()), "not in key order"
assert [o["Key"] for o in a["Contents"] + b["Contents"]] == keys[:10]
EOF
  expect "delimiter" "$(aws s3api list-objects-v2 --bucket "$bucket" --prefix tree/ --delimiter / --query 'length(CommonPrefixes)' --output text)" 7
}
step "s3api list-objects-v2 --max-items / --starting-token / --page-size" api_list

api_multipart() {
  local upload e1 e2
  upload=$(aws s3api create-multipart-upload --bucket "$bucket" --key api/mp.bin --query UploadId --output text)
  head -c $((5 * MiB)) /dev/urandom >"$work/p1"
  head -c 1000 /dev/urandom >"$work/p2"
  e1=$(aws s3api upload-part --bucket "$bucket" --key api/mp.bin --upload-id "$upload" --part-number 1 --body "$work/p1" --query ETag --output text)
  e2=$(aws s3api upload-part --bucket "$bucket" --key api/mp.bin --upload-id "$upload" --part-number 2 --body "$work/p2" --query ETag --output text)
  expect "parts listed" "$(aws s3api list-parts --bucket "$bucket" --key api/mp.bin --upload-id "$upload" --query 'length(Parts)' --output text)" 2
  grep -q -- "$upload" <<<"$(aws s3api list-multipart-uploads --bucket "$bucket" --query 'Uploads[].UploadId' --output text)"
  printf '{"Parts":[{"PartNumber":1,"ETag":%s},{"PartNumber":2,"ETag":%s}]}\n' "$e1" "$e2" >"$work/parts.json"
  etag=$(aws s3api complete-multipart-upload --bucket "$bucket" --key api/mp.bin --upload-id "$upload" \
    --multipart-upload "file://$work/parts.json" --query ETag --output text)
  grep -q -- '-2"$' <<<"$etag"
  aws s3 cp "s3://$bucket/api/mp.bin" "$work/mp.back" --only-show-errors
  cat "$work/p1" "$work/p2" | cmp - "$work/mp.back"
  if aws s3api list-parts --bucket "$bucket" --key api/mp.bin --upload-id "$upload" >"$work/nsu.log" 2>&1; then return 1; fi
  grep -q NoSuchUpload "$work/nsu.log"
}
step "s3api create-multipart-upload / upload-part / complete-multipart-upload" api_multipart

api_tagging() {
  aws s3api put-object-tagging --bucket "$bucket" --key api/h.txt --tagging 'TagSet=[{Key=team,Value=ml},{Key=tier,Value=hot}]'
  expect tags "$(aws s3api get-object-tagging --bucket "$bucket" --key api/h.txt --query 'sort_by(TagSet,&Key)[].[Key,Value]' --output text | tr '\t\n' '=;')" "team=ml;tier=hot;"
}
step "s3api put-object-tagging / get-object-tagging" api_tagging

api_delete_objects() {
  printf '{"Objects":[{"Key":"api/h.txt"},{"Key":"api/mp.bin"},{"Key":"api/never-existed"}]}\n' >"$work/delete.json"
  aws s3api delete-objects --bucket "$bucket" --delete "file://$work/delete.json" --output json >"$work/deleted.json"
  python3 - "$work/deleted.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert sorted(d["Key"] for d in r["Deleted"]) == ["api/h.txt", "api/mp.bin", "api/never-existed"], r
assert not r.get("Errors"), r
EOF
  expect "left under api/" "$(aws s3 ls --recursive "s3://$bucket/api/" | wc -l)" 0
}
step "s3api delete-objects" api_delete_objects

rm_recursive() {
  aws s3 rm --recursive "s3://$bucket/tree" --only-show-errors
  expect "left under tree/" "$(aws s3 ls --recursive "s3://$bucket/tree/" | wc -l)" 0
  expect "left in bucket" "$(aws s3 ls --recursive "s3://$bucket/" | wc -l)" 1   # big/big.bin
}
step "s3 rm --recursive" rm_recursive

rb_force() {
  aws s3 rb --force "s3://$bucket"
  if aws s3api head-bucket --bucket "$bucket" 2>/dev/null; then echo "bucket still there"; return 1; fi
  ! grep -q " $bucket\$" <<<"$(aws s3 ls)"
}
step "s3 rb --force" rb_force

echo "awscli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Kiln conformance through the AWS CLI. Needs KILN_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
set -euo pipefail
aws() { command aws --endpoint-url "$KILN_ENDPOINT" --region us-east-1 "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bucket="cli-$(date +%s)-$RANDOM"
pass() { echo "PASS $1"; }

if aws s3 mb "s3://$bucket" >/dev/null; then pass mb; else echo "FAIL mb"; exit 1; fi

head -c $((60 * 1024 * 1024 + 7)) /dev/urandom >"$work/big.bin"
aws s3 cp "$work/big.bin" "s3://$bucket/big.bin" --only-show-errors
aws s3 cp "s3://$bucket/big.bin" "$work/big.back" --only-show-errors
if cmp "$work/big.bin" "$work/big.back"; then pass "cp 60 MiB up and down"; else echo "FAIL cp 60 MiB up and down"; exit 1; fi

mkdir -p "$work/tree"
for i in $(seq 1 300); do
  d="$work/tree/d$((i % 9))/s$((i % 4))"
  mkdir -p "$d"
  head -c $(( (i * 7919) % 65536 )) /dev/urandom >"$d/f$i.bin"
done
aws s3 sync "$work/tree" "s3://$bucket/tree" --only-show-errors
aws s3 sync "s3://$bucket/tree" "$work/tree.back" --only-show-errors
if diff -r "$work/tree" "$work/tree.back"; then pass "sync 300 files up and down"; else echo "FAIL sync 300 files up and down"; exit 1; fi

echo changed >"$work/tree/d1/s1/f1.bin"
rm "$work/tree/d2/s2/f2.bin"
out=$(aws s3 sync "$work/tree" "s3://$bucket/tree" --delete --no-progress)
uploads=$(grep -c '^upload:' <<<"$out" || true)
deletes=$(grep -c '^delete:' <<<"$out" || true)
if [ "$uploads" = 1 ] && [ "$deletes" = 1 ]; then pass "sync --delete transfers only the change"; else echo "FAIL sync --delete transfers only the change"; exit 1; fi

count=$(aws s3 ls --recursive "s3://$bucket/tree/" | wc -l)
if [ "$count" = 299 ]; then pass "ls --recursive ($count)"; else echo "FAIL ls --recursive ($count)"; exit 1; fi

echo hello >"$work/h.txt"
aws s3api put-object --bucket "$bucket" --key api/h.txt --body "$work/h.txt" --content-type text/plain >/dev/null
if [ "$(aws s3api head-object --bucket "$bucket" --key api/h.txt --query ContentType --output text)" = text/plain ]; then pass "s3api head-object"; else echo "FAIL s3api head-object"; exit 1; fi
if aws s3api get-object --bucket "$bucket" --key api/h.txt "$work/h.back" >/dev/null && cmp "$work/h.txt" "$work/h.back"; then pass "s3api get-object"; else echo "FAIL s3api get-object"; exit 1; fi
if [ "$(aws s3api list-objects-v2 --bucket "$bucket" --prefix tree/ --max-items 5 --query 'length(Contents)' --output text)" = 5 ]; then pass "list-objects-v2 --max-items"; else echo "FAIL list-objects-v2 --max-items"; exit 1; fi

upload=$(aws s3api create-multipart-upload --bucket "$bucket" --key api/mp --query UploadId --output text)
head -c $((5 * 1024 * 1024)) /dev/urandom >"$work/p1"; head -c 1000 /dev/urandom >"$work/p2"
e1=$(aws s3api upload-part --bucket "$bucket" --key api/mp --upload-id "$upload" --part-number 1 --body "$work/p1" --query ETag --output text)
e2=$(aws s3api upload-part --bucket "$bucket" --key api/mp --upload-id "$upload" --part-number 2 --body "$work/p2" --query ETag --output text)
printf '{"Parts":[{"PartNumber":1,"ETag":%s},{"PartNumber":2,"ETag":%s}]}' "$e1" "$e2" >"$work/parts.json"
aws s3api complete-multipart-upload --bucket "$bucket" --key api/mp --upload-id "$upload" --multipart-upload "file://$work/parts.json" >/dev/null
aws s3 cp "s3://$bucket/api/mp" "$work/mp.back" --only-show-errors
if cat "$work/p1" "$work/p2" | cmp - "$work/mp.back"; then pass "s3api multipart"; else echo "FAIL s3api multipart"; exit 1; fi

aws s3api put-object-tagging --bucket "$bucket" --key api/h.txt --tagging 'TagSet=[{Key=team,Value=ml}]'
if [ "$(aws s3api get-object-tagging --bucket "$bucket" --key api/h.txt --query 'TagSet[0].Value' --output text)" = ml ]; then pass "s3api tagging"; else echo "FAIL s3api tagging"; exit 1; fi
if aws s3api delete-objects --bucket "$bucket" --delete '{"Objects":[{"Key":"api/h.txt"},{"Key":"api/mp"}],"Quiet":true}' >/dev/null; then pass "s3api delete-objects"; else echo "FAIL s3api delete-objects"; exit 1; fi

aws s3 rm --recursive "s3://$bucket/tree" --only-show-errors
if [ "$(aws s3 ls --recursive "s3://$bucket/tree/" | wc -l)" = 0 ]; then pass "rm --recursive"; else echo "FAIL rm --recursive"; exit 1; fi
if aws s3 rb --force "s3://$bucket" >/dev/null; then pass "rb --force"; else echo "FAIL rb --force"; exit 1; fi
echo "awscli suite: all passed"

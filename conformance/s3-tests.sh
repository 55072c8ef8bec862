#!/usr/bin/env bash
# Run Ceph's s3-tests (functional/test_s3.py) against a fresh Kiln on temporary drives.
#   conformance/s3-tests.sh PATH-TO-S3-TESTS [extra pytest args...]
# Prints "P passed of N selected". With conformance/s3-tests-expected.txt present, exits
# non-zero when a test listed there no longer passes (a regression).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
suite=${1:?usage: s3-tests.sh PATH-TO-S3-TESTS [pytest args]}
suite=$(cd "$suite" && pwd)
shift

work=$(mktemp -d)
port=${KILN_S3TESTS_PORT:-9309}
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait "${pid:-}" 2>/dev/null
  # KILN_S3TESTS_LOGS=DIR keeps pytest's and Kiln's logs for a look at the failures.
  [ -n "${KILN_S3TESTS_LOGS:-}" ] && mkdir -p "$KILN_S3TESTS_LOGS" && cp "$work"/*.log "$work"/junit.xml "$KILN_S3TESTS_LOGS"/ 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

main_key=S3TESTSMAIN000000001
main_secret=s3tests-main-secret-0123456789abcdefghij
alt_key=S3TESTSALT0000000001
alt_secret=s3tests-alt-secret-0123456789abcdefghijk

[ -f "$root/dist/server/cli.js" ] || (cd "$root" && npm run build >/dev/null)
KILN_ROOT_USER=$main_key KILN_ROOT_PASSWORD=$main_secret KILN_LOG_LEVEL=${KILN_LOG_LEVEL:-error} \
  KILN_LIFECYCLE_DAY_SECONDS=${KILN_LIFECYCLE_DAY_SECONDS:-10} \
  node "$root/server/kiln.cjs" server --address "127.0.0.1:$port" \
  --drives "$work/d1,$work/d2,$work/d3,$work/d4" --durability relaxed >"$work/kiln.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.1; done

export KILN_ROOT_USER=$main_key KILN_ROOT_PASSWORD=$main_secret
node "$root/server/kiln.cjs" admin key create --endpoint "http://127.0.0.1:$port" --own-buckets \
  --access-key "$alt_key" --secret-key "$alt_secret" >/dev/null || { echo "could not create the alt key"; exit 1; }
owner_id() { node -e "console.log(require('crypto').createHash('sha256').update('kiln-owner:'+process.argv[1]).digest('hex'))" "$1"; }

cat >"$work/s3tests.conf" <<CONF
[DEFAULT]
host = 127.0.0.1
port = $port
is_secure = False
ssl_verify = False
[fixtures]
bucket prefix = kiln-{random}-
iam name prefix = s3-tests-
iam path prefix = /s3-tests/
[s3 main]
display_name = $main_key
user_id = $(owner_id $main_key)
email = main@example.com
api_name = default
access_key = $main_key
secret_key = $main_secret
[s3 alt]
display_name = $alt_key
user_id = $(owner_id $alt_key)
email = alt@example.com
access_key = $alt_key
secret_key = $alt_secret
[s3 tenant]
display_name = $alt_key
user_id = $(owner_id $alt_key)
access_key = $alt_key
secret_key = $alt_secret
email = tenant@example.com
tenant = testx
[iam]
email = s3@example.com
user_id = $(owner_id $main_key)
access_key = $main_key
secret_key = $main_secret
display_name = $main_key
[iam root]
access_key = $main_key
secret_key = $main_secret
user_id = $(owner_id $main_key)
email = root@example.com
[iam alt root]
access_key = $alt_key
secret_key = $alt_secret
user_id = $(owner_id $alt_key)
email = altroot@example.com
CONF

markers='not (bucket_logging or bucket_logging_cleanup or fails_without_logging_rollover or bucket_policy or user_policy or role_policy or group_policy or session_policy or abac_test or iam_account or iam_user or iam_role or iam_tenant or iam_cross_account or test_of_sts or webidentity_test or token_claims_trust_policy_test or token_principal_tag_role_policy_test or token_request_tag_trust_policy_test or token_resource_tags_test or token_role_tags_test or token_tag_keys_test or sns or s3select or s3website or s3website_routing_rules or s3website_redirect_location or encryption or sse_s3 or bucket_encryption or object_ownership or lifecycle_expiration or lifecycle_transition or cloud_transition or cloud_restore or target_by_bucket or storage_class)'
names='not (acl or access_bucket or tenant or public_block or block_public or policy_status or notprincipal or bucket_with_policy or 404_with_policy)'

# Debian's python3-munch lives outside a pyenv interpreter's path. Only munch is linked in:
# the whole dist-packages on PYTHONPATH would shadow the interpreter's own boto3, botocore,
# pytest or pluggy with Debian's older ones, should those packages be installed too.
mkdir -p "$work/pylib"
# (the package and its metadata: the suite asks pkg_resources for the distribution)
for f in /usr/lib/python3/dist-packages/munch /usr/lib/python3/dist-packages/munch-*; do [ -e "$f" ] && ln -s "$f" "$work/pylib/"; done
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$work/pylib"
export S3TEST_CONF="$work/s3tests.conf"
(cd "$suite" && python3 -m pytest -p no:cacheprovider -q -rN --no-header -o junit_family=xunit2 \
  --junitxml="$work/junit.xml" -m "$markers" -k "$names" s3tests/functional/test_s3.py "$@") >"$work/pytest.log" 2>&1
python3 - "$work/junit.xml" "$here/s3-tests-expected.txt" "${KILN_S3TESTS_RESULTS:-}" <<'PY'
import sys, xml.etree.ElementTree as ET, os
junit, expected_path, results_out = sys.argv[1], sys.argv[2], sys.argv[3]
passed, total = [], 0
for case in ET.parse(junit).getroot().iter('testcase'):
    total += 1
    if not any(child.tag in ('failure', 'error', 'skipped') for child in case):
        passed.append(case.get('name'))
print(f"{len(passed)} passed of {total} selected")
if results_out:
    open(results_out, 'w').write('\n'.join(sorted(passed)) + '\n')
if os.path.exists(expected_path):
    expected = {l.strip() for l in open(expected_path) if l.strip() and not l.startswith('#')}
    lost = sorted(expected - set(passed))
    if lost:
        print(f"REGRESSION: {len(lost)} expected tests no longer pass:")
        for n in lost: print('  ' + n)
        sys.exit(1)
PY

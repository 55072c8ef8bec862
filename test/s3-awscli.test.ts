// The AWS CLI (aws s3 / aws s3api) against a real Kiln: runs conformance/awscli_suite.sh and
// requires every step in it to pass.
import t from 'tap';
import { startServer } from './helpers/server';
import { runSuite, tail, SUITE_LIMIT_MS } from './helpers/conformance';

t.test('AWS CLI conformance suite', async (t) => {
  const srv = await startServer();
  t.teardown(() => srv.close());
  const r = await runSuite('bash', ['conformance/awscli_suite.sh'], srv.env());
  const failed = r.out.split('\n').filter((l) => l.startsWith('FAIL '));
  if (r.timedOut) t.fail(`AWS CLI suite killed after ${SUITE_LIMIT_MS / 1000} s`, { output: tail(r.out, 60) });
  t.equal(r.code, 0, `awscli_suite.sh exit status${failed.length ? ` (${failed.join('; ')})` : ''}`, r.code === 0 ? {} : { output: tail(r.out, 120) });
  t.match(r.out, /^awscli: \d+ passed, 0 failed$/m, 'every step passed');
  t.comment(tail(r.out, 1));
});

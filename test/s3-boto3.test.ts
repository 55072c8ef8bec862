// boto3 (with its shipped defaults, flexible checksums on) against a real Kiln: runs
// conformance/boto3_suite.py under pytest and requires every test in it to pass.
import t from 'tap';
import { startServer } from './helpers/server';
import { runSuite, tail, SUITE_LIMIT_MS } from './helpers/conformance';

t.test('boto3 conformance suite', async (t) => {
  const srv = await startServer();
  t.teardown(() => srv.close());
  const r = await runSuite('python3', ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-rfE', 'conformance/boto3_suite.py'], srv.env());
  const summary = tail(r.out, 1);
  if (r.timedOut) t.fail(`boto3 suite killed after ${SUITE_LIMIT_MS / 1000} s`, { output: tail(r.out, 60) });
  t.equal(r.code, 0, `pytest exit status (${summary})`, r.code === 0 ? {} : { output: tail(r.out, 120) });
  t.match(summary, /\d+ passed/, 'pytest ran the suite');
  t.comment(`boto3: ${summary}`);
});

// Runs test files with node:test, one file at a time, each in its own
// process, and prints TAP; exits 1 if any test failed (a todo test may).
//
//   node run-tests.mjs [--timeout=MS] FILE...
//
// --timeout bounds each file. The same as `node --test --test-reporter=tap
// --test-concurrency=1 --test-timeout=MS`, whose last two flags Node 18
// (Debian 12's) does not know: run() and its options are there.
import {run} from 'node:test';
import {tap} from 'node:test/reporters';
import path from 'node:path';
import {parseArgs} from 'node:util';

const {values, positionals} = parseArgs({options: {timeout: {type: 'string'}}, allowPositionals: true});
const timeout = values.timeout === undefined ? Infinity : Number(values.timeout);
if (!positionals.length || !(timeout > 0)) {
  console.error('usage: run-tests.mjs [--timeout=MS] FILE...');
  process.exit(2);
}

run({files: positionals.map((f) => path.resolve(f)), concurrency: 1, timeout})
  .on('test:fail', (t) => { if (!t.todo) process.exitCode = 1; })
  .compose(tap)
  .pipe(process.stdout);

#!/usr/bin/env node
// `npm run bench:ops`: GFLOP/s per op and dtype at SD 1.5 shapes (issue 2). Placeholder until the
// kernel work lands; it measures nothing yet.
console.log('bench:ops: pending (the op benchmarks are not written yet)');

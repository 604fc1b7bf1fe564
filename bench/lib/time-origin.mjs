// Preloaded into a benchmarked server by `npm run bench -- --gc-timeline` (node --import): prints
// when this process's clock started (epoch ms), so the times of V8's --trace-gc lines (ms since
// the isolate started) can be put on the same axis as the load generator's request times.
process.stderr.write(`TIMEORIGIN ${performance.timeOrigin}\n`);

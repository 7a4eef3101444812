// BullMQ peer of `motionq-bench queue`: pushes N jobs with addBulk and runs a no-op Worker
// until all N completed, on the Redis at 127.0.0.1:<port>. Prints one JSON line with the
// elapsed wall time and this process's CPU time (module loading is excluded from both).
// Usage: node bullmq-noop.mjs <port> <jobs> <concurrency>
import { Queue, Worker } from 'bullmq';

const [port, jobs, concurrency] = process.argv.slice(2).map(Number);
if (!port || !jobs || !concurrency) {
  console.error('usage: node bullmq-noop.mjs <port> <jobs> <concurrency>');
  process.exit(2);
}
// BullMQ requires maxRetriesPerRequest: null on the worker's connection.
const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
const name = `mqbench-bullmq-${process.pid}-${Date.now()}`;

const cpu0 = process.cpuUsage();
const t0 = performance.now();
const queue = new Queue(name, { connection });
let completed = 0;
let allDone;
const finished = new Promise((resolve) => { allDone = resolve; });
const worker = new Worker(name, async () => {}, { connection, concurrency });
worker.on('completed', () => {
  completed += 1;
  if (completed === jobs) allDone();
});
worker.on('error', (e) => { console.error('worker error', e); process.exit(1); });

// Completed jobs are removed, as a long-running deployment would configure it.
for (let i = 0; i < jobs; i += 1000) {
  const batch = [];
  for (let k = i; k < Math.min(jobs, i + 1000); k += 1) {
    batch.push({ name: 'noop', data: { i: k }, opts: { removeOnComplete: true } });
  }
  await queue.addBulk(batch);
}
await finished;
const elapsedMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
await worker.close();
await queue.close();
console.log(JSON.stringify({ jobs: completed, elapsed_ms: elapsedMs, cpu_ms: (cpu.user + cpu.system) / 1000 }));

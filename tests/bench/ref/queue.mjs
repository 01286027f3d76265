#!/usr/bin/env node
// queue.mjs - BullMQ doing what pxl-bench's "queue" scenario has pxl do,
// on a given Redis: the reference of the queue benchmark.
//
// The way a Node developer writes it with BullMQ: this process is the
// producer (a Queue with removeOnComplete in its default job options),
// and it forks --workers processes, each with one Worker of --concurrency
// running a processor that does nothing (an async function that only
// notes when it started). Two runs, one after the other:
//
//   1. flat-out: --jobs jobs added with queue.addBulk, --batch at a time,
//      each batch awaited before the next; jobs/s is from the first add to
//      the last completion ('completed' event of a Worker);
//   2. paced: --rate jobs/s for --seconds, one queue.add per job from a
//      1 ms timer; the add-to-start latency of each job.
//
// Each job's data is {t: the add time, r: the run}; t is
// process.hrtime.bigint() in microseconds, CLOCK_MONOTONIC, which every
// process of the machine shares, so the processor's start minus t is the
// add-to-start latency.
//
// CPU: utime + stime from /proc/PID/stat of this process (the producer),
// every worker process and, with --redis-pid, redis-server, read before
// the first add and once every job has completed.
//
//   node queue.mjs --redis-port N [--redis-host H] [--redis-pid PID]
//        [--workers 1] [--concurrency 64] [--jobs 100000] [--batch 1000]
//        [--rate 1000] [--seconds 10]
//
// Prints one line "RESULT {json}" (the field names of pxl-bench's queue
// scenario, see README.md) and exits 0; 1 when a run failed (a job
// failed, was lost or ran twice, or no progress for 30 s).
import { fork, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

// Loaded with require so NODE_PATH works too (as server.mjs does).
const require = createRequire(import.meta.url);
const { Queue, Worker } = require('bullmq');

const QUEUE = 'bench';
const LOOK_MS = 10; // how often workers report their counts
const STALL_MS = 30000; // no progress for this long fails the run
const READY_TIMEOUT_MS = 30000;

// ---- options ------------------------------------------------------------

function usage(status) {
  (status ? process.stderr : process.stdout).write(
    'usage: node queue.mjs --redis-port N [--redis-host H] [--redis-pid PID]\n' +
    '         [--workers 1] [--concurrency 64] [--jobs 100000] [--batch 1000]\n' +
    '         [--rate 1000] [--seconds 10]\n');
  process.exit(status);
}

function parseArgs(argv) {
  const o = {
    redisHost: '127.0.0.1', redisPort: null, redisPid: 0, workers: 1,
    concurrency: 64, jobs: 100000, batch: 1000, rate: 1000, seconds: 10,
    worker: false,
  };
  const ints = {
    '--redis-port': ['redisPort', 1, 65535], '--redis-pid': ['redisPid', 1, 2 ** 30],
    '--workers': ['workers', 1, 64], '--concurrency': ['concurrency', 1, 10000],
    '--jobs': ['jobs', 0, 1e8], '--batch': ['batch', 1, 100000],
    '--rate': ['rate', 1, 1e6], '--seconds': ['seconds', 1, 86400],
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const value = () => (eq > 0 ? arg.slice(eq + 1) : argv[++i]);
    if (name in ints) {
      const [key, min, max] = ints[name];
      const v = Number(value());
      if (!Number.isInteger(v) || v < min || v > max) {
        process.stderr.write(`queue.mjs: bad value for ${name}\n`);
        usage(2);
      }
      o[key] = v;
    } else if (name === '--redis-host') {
      o.redisHost = value();
    } else if (name === '--worker') {
      o.worker = true; // internal: this process is a worker
    } else if (name === '--help' || name === '-h') {
      usage(0);
    } else {
      process.stderr.write(`queue.mjs: unknown option ${arg}\n`);
      usage(2);
    }
  }
  if (o.redisPort === null) usage(2);
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const connection = {
  host: opts.redisHost,
  port: opts.redisPort,
  maxRetriesPerRequest: null, // what BullMQ asks of a Worker's connection
};

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

// ---- a worker process ---------------------------------------------------

async function runWorker() {
  const runs = new Map(); // r -> add-to-start latencies (us)
  let completed = 0;
  let failed = 0;
  let lastDoneUs = 0;
  let bad = 0;
  let reported = -1;

  const worker = new Worker(QUEUE, async (job) => {
    const start = nowUs();
    const { t, r } = job.data ?? {};
    if (!Number.isInteger(t) || !Number.isInteger(r)) {
      bad++;
      return;
    }
    let lat = runs.get(r);
    if (lat === undefined) runs.set(r, (lat = []));
    lat.push(start - t);
  }, { connection, concurrency: opts.concurrency });
  worker.on('completed', () => {
    completed++;
    lastDoneUs = nowUs();
  });
  worker.on('failed', () => {
    failed++;
  });
  worker.on('error', (err) => {
    process.stderr.write(`queue.mjs worker ${process.pid}: ${err.message}\n`);
  });
  const look = setInterval(() => {
    if (completed + failed === reported) return;
    reported = completed + failed;
    process.send({ completed, failed, lastDoneUs });
  }, LOOK_MS);
  // The producer has gone (it failed, or was killed): so do we.
  process.on('disconnect', () => process.exit(1));
  process.on('message', async (m) => {
    if (m.stats !== undefined) {
      const lat = runs.get(m.stats) ?? [];
      process.send({ stats: m.stats, pid: process.pid, started: lat.length,
                     lat, bad, completed, failed, lastDoneUs });
    } else if (m.stop) {
      clearInterval(look);
      await worker.close();
      process.exit(0);
    }
  });
  await worker.waitUntilReady();
  process.send({ ready: true });
}

// ---- the producer -------------------------------------------------------

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString()) || 100;

// utime + stime of one process, in seconds, or NaN once it has gone.
function cpuOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

function percentile(sorted, q) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

const children = []; // the worker processes

function fail(why) {
  process.stderr.write(`queue.mjs: ${why}\n`);
  for (const c of children) {
    c.stopping = true;
    c.kill('SIGKILL');
  }
  process.exit(1);
}

async function runProducer() {
  const counts = new Map(); // pid -> {completed, failed, lastDoneUs}
  let progressAt = Date.now();
  const pending = new Map(); // pid -> resolve of a stats request
  let onCounts = () => {}; // the running phase's check

  for (let i = 0; i < opts.workers; i++) {
    const args = process.argv.slice(2).concat(['--worker']);
    const child = fork(fileURLToPath(import.meta.url), args,
                       { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    child.on('exit', (code) => {
      if (!child.stopping) fail(`worker ${child.pid} exited (${code})`);
    });
  }
  await Promise.race([
    Promise.all(children.map((c) => new Promise((resolve) => {
      c.on('message', (m) => {
        if (m.ready) {
          resolve();
        } else if (m.stats !== undefined) {
          pending.get(c.pid)?.(m);
        } else {
          const old = counts.get(c.pid);
          if (!old || old.completed !== m.completed) progressAt = Date.now();
          counts.set(c.pid, m);
          onCounts();
        }
      });
    }))),
    new Promise((resolve, reject) => setTimeout(
      () => reject(new Error('workers not ready')), READY_TIMEOUT_MS)),
  ]).catch((e) => fail(e.message));

  const queue = new Queue(QUEUE, {
    connection,
    defaultJobOptions: { removeOnComplete: true },
  });
  await queue.waitUntilReady();

  const total = (key) => [...counts.values()].reduce((a, c) => a + c[key], 0);
  const lastDone = () => Math.max(0, ...[...counts.values()].map((c) => c.lastDoneUs));
  const cpu = () => ({
    producer: cpuOf(process.pid),
    workers: children.reduce((a, c) => a + cpuOf(c.pid), 0),
    redis: opts.redisPid ? cpuOf(opts.redisPid) : 0,
  });
  const stats = (r) => Promise.all(children.map((c) => new Promise((resolve) => {
    pending.set(c.pid, resolve);
    c.send({ stats: r });
  })));
  // Resolves once `added` more jobs than `base` have completed, checked
  // as the workers report.
  const done = (base, added) => new Promise((resolve) => {
    const stall = setInterval(() => {
      if (Date.now() - progressAt > STALL_MS) {
        fail(`${total('completed') - base} of ${added} jobs completed, ` +
             `no progress for ${STALL_MS / 1000} s`);
      }
    }, 1000);
    onCounts = () => {
      if (total('failed') > 0) fail(`${total('failed')} jobs failed`);
      if (total('completed') - base >= added) {
        clearInterval(stall);
        onCounts = () => {};
        resolve();
      }
    };
    onCounts();
  });

  // 1. Flat-out, addBulk in batches.
  let base = total('completed');
  const cpu0 = cpu();
  const t0 = process.hrtime.bigint();
  let firstAdd = 0;
  for (let sent = 0; sent < opts.jobs; sent += opts.batch) {
    const n = Math.min(opts.batch, opts.jobs - sent);
    const jobs = [];
    for (let i = 0; i < n; i++) {
      jobs.push({ name: 'job', data: { t: nowUs(), r: 1 } });
    }
    if (sent === 0) firstAdd = jobs[0].data.t;
    await queue.addBulk(jobs);
    progressAt = Date.now();
  }
  await done(base, opts.jobs);
  const cpu1 = cpu();
  const window = Number(process.hrtime.bigint() - t0) / 1e9;
  const flatDone = lastDone();
  const flat = await stats(1);

  // 2. Paced: --rate jobs/s for --seconds, one add each.
  const target = Math.round(opts.rate * opts.seconds);
  base = total('completed');
  const pcpu0 = cpu();
  const p0 = process.hrtime.bigint();
  let paced = 0;
  let firstPaced = 0;
  let lastPaced = 0;
  const adds = [];
  await new Promise((resolve) => {
    const tick = setInterval(() => {
      const elapsed = Number(process.hrtime.bigint() - p0) / 1e9;
      const due = Math.min(target, Math.floor(elapsed * opts.rate) + 1);
      for (; paced < due; paced++) {
        const t = nowUs();
        if (paced === 0) firstPaced = t;
        lastPaced = t;
        adds.push(queue.add('job', { t, r: 2 }));
      }
      if (paced >= target) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
  await Promise.all(adds);
  await done(base, target);
  const pcpu1 = cpu();
  const pwindow = Number(process.hrtime.bigint() - p0) / 1e9;
  const pacedStats = await stats(2);

  const exited = children.map((c) => new Promise((resolve) => {
    c.stopping = true;
    c.on('exit', resolve);
    c.send({ stop: true });
  }));
  await queue.close();
  await Promise.race([Promise.all(exited),
                      new Promise((resolve) => setTimeout(resolve, 10000))]);

  // The figures, under pxl-bench's names.
  const merge = (st) => {
    const lat = [];
    for (const s of st) for (const v of s.lat) lat.push(v);
    lat.sort((a, b) => a - b);
    return { lat, started: lat.length, bad: st.reduce((a, s) => a + s.bad, 0) };
  };
  const f = merge(flat);
  const p = merge(pacedStats);
  const secs = (flatDone - firstAdd) / 1e6;
  const m = opts.jobs / 1e6;
  const node = (cpu1.producer - cpu0.producer) + (cpu1.workers - cpu0.workers);
  const redis = cpu1.redis - cpu0.redis;
  const round = (v, d) => Number(v.toFixed(d));
  const out = {
    scenario: 'queue',
    reference: 'bullmq',
    bullmq: require('bullmq/package.json').version,
    node: process.version,
    workers: opts.workers,
    concurrency: opts.concurrency,
    jobs: opts.jobs,
    batch: opts.batch,
    seconds: round(secs, 3),
    window_s: round(window, 3),
    messages: opts.jobs,
    msgs_per_sec: round(secs > 0 ? opts.jobs / secs : 0, 1),
    jobs_per_sec: round(secs > 0 ? opts.jobs / secs : 0, 1),
    started: f.started,
    duplicated: Math.max(0, f.started - opts.jobs) + Math.max(0, p.started - target),
    lost: Math.max(0, opts.jobs - f.started) + Math.max(0, target - p.started),
    flat_p50_us: percentile(f.lat, 0.5),
    flat_p99_us: percentile(f.lat, 0.99),
    flat_max_us: f.lat.length ? f.lat[f.lat.length - 1] : 0,
    producer_cpu_s: round(cpu1.producer - cpu0.producer, 3),
    workers_cpu_s: round(cpu1.workers - cpu0.workers, 3),
    server_cpu_s: round(node, 3),
    also_cpu_s: round(redis, 3),
    cpu_s: round(node + redis, 3),
    server_cpu_per_1m: m ? round(node / m, 4) : null,
    also_cpu_per_1m: m ? round(redis / m, 4) : null,
    cpu_per_1m: m ? round((node + redis) / m, 4) : null,
    rate: opts.rate,
    rate_jobs: target,
    rate_started: p.started,
    rate_add_seconds: round((lastPaced - firstPaced) / 1e6, 3),
    rate_window_s: round(pwindow, 3),
    p50_us: percentile(p.lat, 0.5),
    p99_us: percentile(p.lat, 0.99),
    p999_us: percentile(p.lat, 0.999),
    max_us: p.lat.length ? p.lat[p.lat.length - 1] : 0,
    rate_server_cpu_s: round((pcpu1.producer - pcpu0.producer) +
                             (pcpu1.workers - pcpu0.workers), 3),
    rate_also_cpu_s: round(pcpu1.redis - pcpu0.redis, 3),
    jobs_failed: total('failed'),
    bad: f.bad + p.bad,
  };
  process.stdout.write(`RESULT ${JSON.stringify(out)}\n`);
  process.exit(out.duplicated || out.lost || out.jobs_failed || out.bad ? 1 : 0);
}

if (opts.worker) {
  runWorker().catch((e) => {
    process.stderr.write(`queue.mjs worker: ${e.stack}\n`);
    process.exit(1);
  });
} else {
  runProducer().catch((e) => fail(e.stack));
}

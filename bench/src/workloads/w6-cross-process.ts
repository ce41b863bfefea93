import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { median, percentile } from '../harness.js';
import type { BenchConfig, Column, Row, Workload, WorkloadResult } from '../harness.js';
import { closeIoredis, openIoredis } from '../systems.js';
import type { ChildMessage, ParentMessage } from './w6-child.js';

const PROCESSES = 4;
const CALLERS = 250;
const LOADER_MS = 300;
const ROUND_TIMEOUT_MS = 10_000;
/** The first open also waits for the process to start and load every library, which is slow on a busy machine. */
const OPEN_TIMEOUT_MS = 30_000;
const SYSTEMS = ['tiercache', 'BentoCache L1+L2', 'cache-manager L1+L2'];

const children = new Set<ChildProcess>();

/** Kills the W6 child processes still alive; called on SIGINT and at the end of the workload. */
export function killChildren(): void {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
}

/**
 * The child as one plain ES module (bench code bundled, packages left to node's resolver). Started this way, four
 * children are ready in about 4 s on a busy 2-core machine, against about 7 s through the tsx loader, which resolves
 * every module of every library through its hooks.
 */
async function bundleChild(): Promise<string | undefined> {
  try {
    const { build } = await import('esbuild');
    const outfile = fileURLToPath(new URL('../../results/.w6-child.mjs', import.meta.url));
    await build({
      entryPoints: [fileURLToPath(new URL('./w6-child.ts', import.meta.url))],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      outfile,
      logLevel: 'silent',
    });
    return outfile;
  } catch {
    return undefined;
  }
}

function spawnChild(bundle: string | undefined): ChildProcess {
  let child: ChildProcess;
  if (bundle !== undefined) {
    child = fork(bundle, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  } else {
    // Without the bundle, run the TypeScript through tsx: in execArgv already under tsx, added anywhere else.
    const path = fileURLToPath(new URL('./w6-child.ts', import.meta.url));
    const inherited = process.execArgv.filter((arg) => !/^--(cpu-prof|heap-prof|inspect)/.test(arg));
    const execArgv = inherited.some((arg) => arg.includes('tsx')) ? inherited : [...inherited, '--import', 'tsx'];
    child = fork(path, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  }
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

let nextSeq = 0;

type Request = ParentMessage extends infer M ? (M extends ParentMessage ? Omit<M, 'seq'> : never) : never;

/** Sends one request and waits for the reply with the same sequence number, the child's exit, or the timeout. */
function request(child: ChildProcess, body: Request, timeoutMs: number): Promise<ChildMessage> {
  const message = { ...body, seq: nextSeq++ } as ParentMessage;
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`a W6 process did not answer \`${message.type}\` within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const onMessage = (raw: unknown): void => {
      const reply = raw as ChildMessage;
      if (reply.seq !== message.seq) return;
      done();
      resolve(reply);
    };
    const onExit = (code: number | null): void => {
      done();
      reject(new Error(`a W6 process exited (code ${code}) before answering \`${message.type}\``));
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.send(message);
  });
}

const COLUMNS: readonly Column[] = [
  { key: 'calls', label: 'loader calls', kind: 'text' },
  { key: 'p50', label: 'waiter p50', kind: 'duration' },
  { key: 'p99', label: 'waiter p99', kind: 'duration' },
];

export const w6: Workload = {
  id: 'W6',
  title: `Cross-process stampede: ${PROCESSES} processes × ${CALLERS} callers on one cold key, ${LOADER_MS} ms loader`,
  systems: SYSTEMS,
  async run(config: BenchConfig, select): Promise<WorkloadResult> {
    const started = performance.now();
    const rounds = config.mode === 'full' ? config.rounds : 1;
    const admin = await openIoredis(config.redis);
    const rows: Row[] = [];
    const bundle = await bundleChild();
    const procs = Array.from({ length: PROCESSES }, () => spawnChild(bundle));
    try {
      for (const system of SYSTEMS.filter(select)) {
        const calls: number[] = [];
        const p50s: number[] = [];
        const p99s: number[] = [];
        const notes = new Set<string>();
        let failures = 0;
        try {
          const opened = await Promise.all(
            procs.map((p) => request(p, { type: 'open', system, redis: config.redis }, OPEN_TIMEOUT_MS)),
          );
          for (const reply of opened) {
            if (reply.type === 'failed') throw new Error(reply.error);
            if (reply.type === 'opened') notes.add(reply.note);
          }
          // Round 0 warms every process (code paths, connections) and is not reported; quick mode skips it.
          for (let round = config.mode === 'full' ? 0 : 1; round <= rounds; round++) {
            const slug = system.replace(/\W+/g, '-');
            const key = `w6:${slug}:cold:${round}`;
            const counterKey = `w6:${slug}:loads:${round}`;
            await admin.del(counterKey);
            const message: Request = {
              type: 'round',
              key,
              counterKey,
              callers: CALLERS,
              loaderMs: LOADER_MS,
              id: round,
            };
            const replies = await Promise.all(procs.map((p) => request(p, message, ROUND_TIMEOUT_MS)));
            const loads = Number((await admin.get(counterKey)) ?? 0);
            if (round === 0) continue;
            const latencies: number[] = [];
            for (const reply of replies) {
              if (reply.type !== 'result')
                throw new Error(reply.type === 'failed' ? reply.error : `unexpected ${reply.type}`);
              latencies.push(...reply.latencies);
              failures += reply.failures;
              if (reply.firstError) notes.add(`error: ${reply.firstError}`);
            }
            calls.push(loads);
            p50s.push(percentile(latencies, latencies.length, 50));
            p99s.push(percentile(latencies, latencies.length, 99));
          }
          await Promise.all(procs.map((p) => request(p, { type: 'close' }, 10_000)));
        } catch (error) {
          notes.add(`did not finish: ${error instanceof Error ? error.message : String(error)}`);
          config.log(`  W6 ${system}: ${String(error)}`);
        }
        if (failures > 0) notes.add(`${failures} callers got an error or a wrong value`);
        const lo = Math.min(...calls);
        const hi = Math.max(...calls);
        const medianCalls = calls.length > 0 ? median(calls) : null;
        rows.push({
          system,
          role: system === 'tiercache' ? 'subject' : 'peer',
          values: {
            calls: calls.length === 0 ? null : lo === hi ? String(lo) : `${lo}–${hi}`,
            p50: p50s.length > 0 ? median(p50s) : null,
            p99: p99s.length > 0 ? median(p99s) : null,
          },
          ratio: medianCalls,
          reps: calls,
          ...(notes.size > 0 ? { note: [...notes].join('; ') } : {}),
        });
      }
    } finally {
      for (const p of procs) p.disconnect();
      await Promise.all(
        procs.map(
          (p) =>
            new Promise<void>((resolve) => {
              if (p.exitCode !== null) return resolve();
              const timer = setTimeout(() => p.kill('SIGKILL'), 3000);
              p.once('exit', () => {
                clearTimeout(timer);
                resolve();
              });
            }),
        ),
      );
      killChildren();
      await closeIoredis(admin);
    }
    return {
      id: 'W6',
      title: this.title,
      description:
        `${PROCESSES} processes on one Redis each start ${CALLERS} getOrSet calls for the same cold key at once; every ` +
        'loader call increments a Redis counter, so loads are counted across processes. Ideal: 1 load.',
      reference: null,
      ratioLabel: '× ideal loads',
      columns: COLUMNS,
      rows,
      notes: [
        `loader calls: range over ${rounds} round(s) (after one warm-up round in full mode); waiter p50/p99: medians over rounds of all ${PROCESSES * CALLERS} callers`,
      ],
      elapsedMs: performance.now() - started,
    };
  },
};

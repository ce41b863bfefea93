import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SETTINGS, WORKLOADS, parseArgs, runBench, selection } from '../src/bench.js';
import type { BenchResult } from '../src/bench.js';
import { median } from '../src/harness.js';

const dir = mkdtempSync(join(tmpdir(), 'tiercache-bench-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe('the bench command line', () => {
  it('reads --quick, --filter and --json, and refuses anything else', () => {
    expect(parseArgs(['--quick', '--filter', 'W2', '--json', '/tmp/x.json'])).toEqual({
      mode: 'quick',
      filter: 'W2',
      json: '/tmp/x.json',
    });
    expect(parseArgs([]).mode).toBe('full');
    expect(() => parseArgs(['--fast'])).toThrow(/Unknown argument `--fast`/);
    expect(() => parseArgs(['--filter'])).toThrow(/Expected a value after `--filter`/);
  });

  it('selects whole workloads by id and single systems by name, keeping nothing else', () => {
    expect(selection(WORKLOADS, 'w2').map((s) => s.workload.id)).toEqual(['W2-1', 'W2-64']);
    const bySystem = selection(WORKLOADS, 'node-redis');
    expect(bySystem.map((s) => s.workload.id)).toEqual(['W2-1', 'W2-64', 'W3', 'W5']);
    expect(bySystem[0]?.select('node-redis')).toBe(true);
    expect(bySystem[0]?.select('tiercache L1 off')).toBe(false);
    expect(selection(WORKLOADS, 'no such system')).toEqual([]);
  });
});

describe('a quick run', () => {
  let result: BenchResult;
  const json = join(dir, 'quick.json');

  it('measures W1 for every system, writes the JSON it returns, and stops its redis-server', async () => {
    result = await runBench(
      parseArgs(['--quick', '--filter', 'W1', '--json', json]),
      () => {},
      () => {},
    );
    expect(JSON.parse(readFileSync(json, 'utf8'))).toEqual(JSON.parse(JSON.stringify(result)));
    expect(result).toMatchObject({ schema: 1, mode: 'quick', filter: 'W1' });
    expect(result.versions['tiercache']).toMatch(/^\d+\.\d+\.\d+/);
    expect(await refused(result.redis.port)).toBe(true);

    expect(result.workloads.map((w) => w.id)).toEqual(['W1']);
    const [w1] = result.workloads;
    expect(w1?.reference).toBe('lru-cache');
    const systems = w1?.rows.map((r) => r.system);
    expect(systems).toEqual(
      expect.arrayContaining(['Map', 'lru-cache', 'lru-cache A/A', 'tiercache', 'BentoCache L1']),
    );
    const reference = w1?.rows.find((r) => r.role === 'reference');
    expect(reference?.system).toBe('lru-cache');
    for (const row of w1?.rows ?? []) {
      // A row that did not run, or whose gets missed, says so in its note; none may here.
      expect(row.note ?? '', row.system).not.toMatch(/did not run|failed the check/);
      expect(row.values['rate'], row.system).toBeGreaterThan(0);
      expect(row.values['p99'] as number, row.system).toBeGreaterThanOrEqual(row.values['p50'] as number);
      expect(row.reps, row.system).toHaveLength(SETTINGS.quick.slices);
      // The ratio pairs each round's slice with the reference's slice of the same round.
      const perRound = (row.reps ?? []).map((rate, i) => rate / (reference?.reps?.[i] as number));
      expect(row.ratio, row.system).toBeCloseTo(median(perRound), 9);
      expect(row.values['rate'], row.system).toBe(median(row.reps ?? []));
    }
    expect(reference?.ratio).toBe(1);
  }, 30_000);
});

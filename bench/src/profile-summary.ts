/**
 * Summarizes a V8 .cpuprofile: self time by function, and the total (self + callees) of tiercache's own functions.
 *   npx tsx bench/src/profile-summary.ts <file.cpuprofile> [--top 30]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
  readonly children?: readonly number[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
}

const args = process.argv.slice(2);
const file = args[0];
if (file === undefined) throw new Error('usage: profile-summary <file.cpuprofile> [--top N]');
const top = Number(args[args.indexOf('--top') + 1] || 30);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const samples = profile.samples.length;
const msPerSample = (profile.endTime - profile.startTime) / 1000 / samples;

const label = (n: ProfileNode): string => {
  const { functionName, url, lineNumber } = n.callFrame;
  const where = url
    ? `${url
        .replace(/^file:\/\//, '')
        .replace(/^.*node_modules\//, '')
        .replace(/^.*\/packages\//, '')}:${lineNumber + 1}`
    : '';
  return `${functionName || '(anonymous)'} ${where}`.trim();
};

const self = new Map<string, number>();
for (const n of profile.nodes) self.set(label(n), (self.get(label(n)) ?? 0) + (n.hitCount ?? 0));

// Inclusive time of each function, counted once per sample even when it recurses.
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const inclusive = new Map<string, number>();
const hits = new Map<number, number>();
for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
for (const [id, count] of hits) {
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const node = byId.get(cur);
    if (!node) break;
    const name = label(node);
    if (seen.has(name)) continue;
    seen.add(name);
    inclusive.set(name, (inclusive.get(name) ?? 0) + count);
  }
}

const pct = (n: number): string => `${((n / samples) * 100).toFixed(1).padStart(5)} %`;
process.stdout.write(`${file}: ${samples} samples, ${(samples * msPerSample).toFixed(0)} ms\n\nself time:\n`);
for (const [name, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  process.stdout.write(`${pct(n)}  ${name}\n`);
}
process.stdout.write('\ntotal time of tiercache functions (self + callees):\n');
for (const [name, n] of [...inclusive]
  .filter(([name]) => name.includes('tiercache/'))
  .sort((a, b) => b[1] - a[1])
  .slice(0, top)) {
  process.stdout.write(`${pct(n)}  ${name}\n`);
}

/**
 * Recomputes the ratio column of the throughput workloads of a bench JSON with the paired estimator (`pairedRatio`),
 * from the per-round slice rates the JSON already holds. For runs made before the estimator changed; the measured
 * rates are untouched.
 *
 *   npx tsx bench/src/rescore.ts <in.json> <out.json>
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { BenchResult } from './bench.js';
import { pairedRatio, renderTable } from './harness.js';
import type { WorkloadResult } from './harness.js';

export function rescore(result: BenchResult): BenchResult & { readonly rescored: string } {
  const workloads = result.workloads.map((workload): WorkloadResult => {
    const reference = workload.rows.find((r) => r.role === 'reference');
    if (!workload.columns.some((c) => c.key === 'rate') || reference?.reps === undefined) return workload;
    return {
      ...workload,
      rows: workload.rows.map((row) => ({
        ...row,
        values: { ...row.values, 'ratio of medians': row.ratio },
        ratio: row.reps === undefined ? null : pairedRatio(row.reps, reference.reps ?? []),
      })),
      notes: [
        ...workload.notes,
        `ratio recomputed from this run's per-round slice rates: median over rounds of the system's slice rate over the reference's in the same round (the run itself printed the ratio of the two medians, kept as "ratio of medians")`,
      ],
    };
  });
  return { ...result, workloads, rescored: 'paired per-round median (bench/src/rescore.ts)' };
}

const [input, output] = process.argv.slice(2);
if (input !== undefined && output !== undefined) {
  const result = rescore(JSON.parse(readFileSync(input, 'utf8')) as BenchResult);
  writeFileSync(output, `${JSON.stringify(result, null, 2)}\n`);
  for (const workload of result.workloads) {
    if (workload.columns.some((c) => c.key === 'rate')) {
      process.stdout.write(
        `### ${workload.id}\n\n${renderTable({ ...workload, columns: [...workload.columns, { key: 'ratio of medians', label: 'ratio of medians', kind: 'ratio' }] })}\n\n`,
      );
    }
  }
}

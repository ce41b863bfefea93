/**
 * A bounded histogram of durations (or sizes) on fixed log-scale buckets in one typed array: recording is an index
 * computation and an increment, never an allocation. Ten buckets per decade (each bound 1.26× the one before), so a
 * percentile read off the buckets is within 26 % of the true value, and clamped to the smallest and largest seen.
 */

/** What `stats()` shows of one histogram; times in ms (or a count for batch sizes). 0 when nothing was recorded. */
export interface HistogramSummary {
  readonly count: number;
  readonly sum: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface HistogramShape {
  /** The upper bound of the first bucket: values at or below it land there. */
  readonly min: number;
  /** How many decades above `min` the buckets span; values past the last bound land in an overflow bucket. */
  readonly decades: number;
  /** Buckets per decade. @default 10 */
  readonly perDecade?: number;
}

/** Durations in ms: 1 µs to 100 s. */
export const DURATION_SHAPE: HistogramShape = { min: 0.001, decades: 8 };
/** Batch sizes in keys: 1 to 100 000, three buckets per decade (1, 2.2, 4.6, 10, …). */
export const SIZE_SHAPE: HistogramShape = { min: 1, decades: 5, perDecade: 3 };

export class Histogram {
  readonly #min: number;
  readonly #perDecade: number;
  /** Bucket i holds values in (bound(i-1), bound(i)]; the last one everything above the last bound. */
  readonly #counts: Float64Array;
  #count = 0;
  #sum = 0;
  #lowest = Infinity;
  #highest = 0;

  constructor(shape: HistogramShape = DURATION_SHAPE) {
    this.#min = shape.min;
    this.#perDecade = shape.perDecade ?? 10;
    this.#counts = new Float64Array(shape.decades * this.#perDecade + 2);
  }

  record(value: number): void {
    const counts = this.#counts;
    let index = value <= this.#min ? 0 : Math.ceil(Math.log10(value / this.#min) * this.#perDecade - 1e-9);
    if (index >= counts.length) index = counts.length - 1;
    counts[index] = (counts[index] as number) + 1;
    this.#count++;
    this.#sum += value;
    if (value < this.#lowest) this.#lowest = value;
    if (value > this.#highest) this.#highest = value;
  }

  get count(): number {
    return this.#count;
  }

  get sum(): number {
    return this.#sum;
  }

  /** The upper bound of bucket `index` (Infinity for the overflow bucket). */
  bound(index: number): number {
    return index >= this.#counts.length - 1 ? Infinity : this.#min * 10 ** (index / this.#perDecade);
  }

  get buckets(): number {
    return this.#counts.length;
  }

  /** How many values were recorded at or below the bound of bucket `index`. */
  cumulative(index: number): number {
    let total = 0;
    const last = Math.min(index, this.#counts.length - 1);
    for (let i = 0; i <= last; i++) total += this.#counts[i] as number;
    return total;
  }

  /** The q-quantile (0 < q ≤ 1) read off the buckets: the bound of the bucket it falls in, within [lowest, highest]. */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    const counts = this.#counts;
    let seen = 0;
    for (let i = 0; i < counts.length; i++) {
      seen += counts[i] as number;
      if (seen >= rank) return Math.min(this.#highest, Math.max(this.#lowest, this.bound(i)));
    }
    return this.#highest;
  }

  summary(): HistogramSummary {
    return {
      count: this.#count,
      sum: round(this.#sum),
      p50: round(this.quantile(0.5)),
      p99: round(this.quantile(0.99)),
      max: round(this.#highest),
    };
  }
}

/** Three significant decimals past the ms: stats are read by people. */
function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

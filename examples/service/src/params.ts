import { AppError, AppErrorCode } from './errors.js';

/** The largest id: the columns are PostgreSQL `integer`s. */
export const MAX_ID = 2_147_483_647;

/**
 * A path id, strictly: the digits of a whole number from 1 to MAX_ID as the API writes it — no sign, no exponent, no
 * leading zeros, no spaces — so `/products/1e1`, `/products/007`, `/products/-1` and `/products/99999999999` are one
 * clear 400 each instead of product 10, product 7 or two overlapping messages.
 */
export function parseId(raw: unknown, name = 'id'): number {
  const text = typeof raw === 'string' ? raw : '';
  const id = /^[1-9][0-9]{0,9}$/.test(text) ? Number(text) : Number.NaN;
  if (!(id <= MAX_ID)) {
    const shown = JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
    throw new AppError(
      AppErrorCode.BadRequest,
      `${name}: expected a whole number from 1 to ${MAX_ID} written without sign or leading zeros, got ${shown}`,
    );
  }
  return id;
}

/**
 * The query string with empty parameters removed, so `/news?category=&cursor=&limit=` (the documented template typed
 * as it is) means the same as `/news`.
 */
export function withoutEmpty(query: unknown): unknown {
  if (typeof query !== 'object' || query === null) return query;
  return Object.fromEntries(Object.entries(query).filter(([, value]) => value !== ''));
}

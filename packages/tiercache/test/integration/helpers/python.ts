import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** interop/python, where tiercache_wire.py lives. */
export const INTEROP_DIR = fileURLToPath(new URL('../../../../../interop/python/', import.meta.url));

/**
 * Debian's interpreter first: `python3` on PATH may be another one (pyenv, a virtualenv) without redis-py. Throws
 * when none can `import redis`, so the suite fails with the remedy instead of being skipped.
 */
export async function findPython(candidates = ['/usr/bin/python3', 'python3', 'python']): Promise<string> {
  const tried: string[] = [];
  for (const candidate of candidates) {
    try {
      await run(candidate, ['-c', 'import redis, sys; assert sys.version_info >= (3, 9)'], { timeout: 10_000 });
      return candidate;
    } catch {
      tried.push(candidate);
    }
  }
  throw new Error(
    `No Python 3.9+ with redis-py among ${tried.join(', ')}: install Debian's (apt-get install -y python3 python3-redis)`,
  );
}

/**
 * Runs a Python snippet with `tiercache_wire` importable and `env` in its environment; resolves with what it printed
 * on stdout, parsed as JSON (the snippet prints one JSON document). Rejects with its stderr when it fails.
 */
export async function runPython<T = unknown>(
  python: string,
  code: string,
  env: Record<string, string> = {},
  timeoutMs = 20_000,
): Promise<T> {
  try {
    const { stdout } = await run(python, ['-c', code], {
      timeout: timeoutMs,
      env: { ...process.env, ...env, PYTHONPATH: INTEROP_DIR, PYTHONDONTWRITEBYTECODE: '1' },
    });
    return JSON.parse(stdout) as T;
  } catch (error) {
    const stderr = (error as { stderr?: unknown }).stderr;
    throw new Error(`python failed: ${String(error)}\n${typeof stderr === 'string' ? stderr : ''}`, { cause: error });
  }
}

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Debian's interpreter first: `python3` on PATH may be another one (pyenv, a virtualenv) without redis-py, which
 * tiercache_wire imports. Throws when none can `import redis`, so the suite fails with the remedy instead of skipping.
 */
export async function findPython(candidates = ['/usr/bin/python3', 'python3', 'python']): Promise<string> {
  for (const candidate of candidates) {
    try {
      await run(candidate, ['-c', 'import redis, sys; assert sys.version_info >= (3, 9)'], { timeout: 10_000 });
      return candidate;
    } catch {
      // The next one.
    }
  }
  throw new Error(
    `No Python 3.9+ with redis-py among ${candidates.join(', ')}: install Debian's (apt-get install -y python3 python3-redis)`,
  );
}

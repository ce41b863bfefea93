import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  deadUrl,
  freePort,
  liveRedisCount,
  sendCommand,
  startRedis,
  stopAllRedis,
  sweepOrphans,
} from './helpers/redis-server.js';
import { timed } from './helpers/support.js';

/** Resolves with the connection outcome on 127.0.0.1:port. */
function probe(port: number): Promise<'open' | 'refused'> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve('open');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED') resolve('refused');
      else reject(error);
    });
  });
}

function processExists(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

describe('the redis-server test helper', () => {
  afterAll(stopAllRedis);

  it('starts a server without persistence, bound to loopback, in its own temp dir', async () => {
    const redis = await startRedis();
    try {
      expect(redis.port).not.toBe(6379);
      expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
      expect(await redis.cli('PING')).toBe('PONG');
      expect(await redis.cli('CONFIG', 'GET', 'save')).toBe('save\n');
      expect(await redis.cli('CONFIG', 'GET', 'appendonly')).toBe('appendonly\nno');
      expect(await redis.cli('CONFIG', 'GET', 'bind')).toBe('bind\n127.0.0.1');
      expect(await redis.cli('CONFIG', 'GET', 'dir')).toBe(`dir\n${redis.dir}`);
      expect(existsSync(redis.dir)).toBe(true);
    } finally {
      await redis.stop();
    }
  });

  it('passes extra arguments to redis-server', async () => {
    const redis = await startRedis({ args: ['--enable-debug-command', 'local'] });
    try {
      expect(await sendCommand(redis.port, ['DEBUG', 'SLEEP', '0'])).toBe('OK');
    } finally {
      await redis.stop();
    }
  });

  it('kill refuses connections and restart brings a new process back on the same port', async () => {
    const redis = await startRedis();
    try {
      const firstPid = redis.pid;
      await redis.cli('SET', 'k', 'v');
      await redis.kill();
      expect(redis.running).toBe(false);
      expect(processExists(firstPid)).toBe(false);
      expect(await probe(redis.port)).toBe('refused');

      await redis.restart();
      expect(redis.running).toBe(true);
      expect(redis.pid).not.toBe(firstPid);
      expect(await redis.cli('PING')).toBe('PONG');
      // No persistence: a restarted server starts empty.
      expect(await redis.cli('EXISTS', 'k')).toBe('0');
    } finally {
      await redis.stop();
    }
  });

  it('pause stalls every command until the pause ends', async () => {
    const redis = await startRedis();
    try {
      await redis.pause(400);
      const stalled = await timed(() => sendCommand(redis.port, ['PING'], 5000));
      expect(stalled.value).toBe('PONG');
      // A lower bound only: a busy machine makes it longer, never shorter.
      expect(stalled.ms).toBeGreaterThanOrEqual(300);

      const after = await timed(() => sendCommand(redis.port, ['PING'], 5000));
      expect(after.ms).toBeLessThan(2000);
    } finally {
      await redis.stop();
    }
  });

  it('stop kills the process by pid, removes the temp dir and is idempotent', async () => {
    const before = liveRedisCount();
    const redis = await startRedis();
    const { pid, dir, port } = redis;
    expect(liveRedisCount()).toBe(before + 1);
    await redis.stop();
    await redis.stop();
    expect(processExists(pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    expect(await probe(port)).toBe('refused');
    expect(liveRedisCount()).toBe(before);
  });

  it('stop also ends a server frozen by SIGSTOP', async () => {
    const redis = await startRedis();
    const pid = redis.pid;
    await redis.kill('SIGSTOP');
    expect(redis.running).toBe(true);
    await redis.stop();
    expect(processExists(pid)).toBe(false);
  });

  it('two servers started at once get different ports', async () => {
    const [a, b] = await Promise.all([startRedis(), startRedis()]);
    try {
      expect(a.port).not.toBe(b.port);
      await a.cli('SET', 'only-in-a', '1');
      expect(await b.cli('EXISTS', 'only-in-a')).toBe('0');
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('a server whose test process was SIGKILLed is found and killed by the next sweep', async () => {
    const fixture = fileURLToPath(new URL('./helpers/orphan-fixture.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', fixture], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    let orphan: { pid: number; port: number; dir: string };
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.setEncoding('utf8');
        child.stdout.on('data', (chunk: string) => {
          out += chunk;
          if (out.includes('\n')) resolve(out.split('\n')[0] as string);
        });
        child.once('exit', (code) => reject(new Error(`the fixture exited with ${String(code)} before reporting`)));
      });
      orphan = JSON.parse(line) as typeof orphan;
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    // The hard kill ran no hook: the server outlived its owner.
    expect(processExists(orphan.pid)).toBe(true);
    expect(await sendCommand(orphan.port, ['PING'])).toBe('PONG');

    sweepOrphans({ again: true });
    const deadline = Date.now() + 5000;
    while (processExists(orphan.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(processExists(orphan.pid)).toBe(false);
    expect(existsSync(orphan.dir)).toBe(false);
  });

  it('a missing redis-server binary fails with a hint to install it', async () => {
    const path = process.env['PATH'];
    process.env['PATH'] = '/nonexistent';
    try {
      await expect(startRedis()).rejects.toThrow(/apt-get install redis-server/);
    } finally {
      process.env['PATH'] = path;
    }
  });

  it('freePort and deadUrl name ports where nothing listens', async () => {
    expect(await probe(await freePort())).toBe('refused');
    const url = await deadUrl();
    expect(url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
    expect(await probe(Number(new URL(url).port))).toBe('refused');
  });
});

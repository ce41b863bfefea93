import { CacheModule } from '@nestjs/cache-manager';
import { Global, Inject, Module } from '@nestjs/common';
import type { DynamicModule, OnApplicationShutdown } from '@nestjs/common';
import { Keyv } from 'keyv';
import { createCacheFromEnv } from 'tiercache';
import type { Cache, CacheOptions } from 'tiercache';
import { KeyvTiercache } from 'tiercache/keyv';

/** The injection token of the tiercache `Cache`. */
export const TIERCACHE = Symbol('tiercache');

export interface TiercacheModuleOptions {
  /** Where the TIERCACHE_* variables are read from. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Options the environment cannot express (alerts, a Redis client …). */
  readonly options?: CacheOptions;
}

class TiercacheCloser implements OnApplicationShutdown {
  constructor(@Inject(TIERCACHE) private readonly cache: Cache) {}

  async onApplicationShutdown(): Promise<void> {
    await this.cache.close();
  }
}

/** Holds the one tiercache of the application; global, so any provider can inject `TIERCACHE`. */
@Global()
@Module({})
class TiercacheCoreModule {
  static forRoot(options: TiercacheModuleOptions): DynamicModule {
    return {
      module: TiercacheCoreModule,
      providers: [
        {
          provide: TIERCACHE,
          useFactory: (): Cache => createCacheFromEnv(options.env ?? process.env, { options: options.options ?? {} }),
        },
        TiercacheCloser,
      ],
      exports: [TIERCACHE],
    };
  }
}

/**
 * tiercache configured from TIERCACHE_* variables, and `@nestjs/cache-manager` wired to it through the Keyv adapter:
 * `CACHE_MANAGER` and `CacheInterceptor` then read and write through L1, the breaker and the bus like everything else.
 * Enable shutdown hooks (`app.enableShutdownHooks()`) or call `app.close()` so the cache is closed.
 */
@Module({})
export class TiercacheModule {
  static forRoot(options: TiercacheModuleOptions = {}): DynamicModule {
    const core = TiercacheCoreModule.forRoot(options);
    return {
      module: TiercacheModule,
      imports: [
        core,
        CacheModule.registerAsync({
          isGlobal: true,
          imports: [core],
          inject: [TIERCACHE],
          useFactory: (cache: Cache) => ({ stores: [new Keyv({ store: new KeyvTiercache(cache) })] }),
        }),
      ],
      exports: [core],
    };
  }
}

import { Module } from '@nestjs/common';
import type { DynamicModule } from '@nestjs/common';
import { ProductRepository, ProductsService } from './products.service.js';
import { TiercacheModule } from './tiercache.module.js';
import type { TiercacheModuleOptions } from './tiercache.module.js';

@Module({})
export class AppModule {
  static forRoot(options: TiercacheModuleOptions = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [TiercacheModule.forRoot(options)],
      providers: [ProductRepository, ProductsService],
      exports: [ProductsService],
    };
  }
}

import 'reflect-metadata';
import { bootService } from '#lumen/service';
import { ProberModule } from './app.module.js';
import { proberConfigSchema } from './config.js';

await bootService('prober', proberConfigSchema, (config) => ProberModule.forRoot(config));

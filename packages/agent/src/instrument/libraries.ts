/**
 * The libraries the agent patches through module hooks (./modules.ts), one file each. Libraries that
 * publish diagnostics channels (node:http, undici's fetch) subscribe instead and are not listed here.
 */
import type { ModuleInstrumentation } from './modules.js';

export const libraries: readonly ModuleInstrumentation[] = [];

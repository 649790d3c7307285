/**
 * `loopscope/export`: the agent's shipping machinery — per-interval aggregation, trace sampling,
 * the bounded background transport — for senders that watch an app from outside its process
 * (`loopscope proxy`, `loopscope probe`). Importing it starts no agent and installs nothing.
 */
export { Exporter, FINAL_FLUSH_MS, agentVersion, type ExporterOptions } from './exporter.js';
export type { Observation } from '@loopscope/protocol';
export { readConfig, type AgentConfig } from '../config.js';

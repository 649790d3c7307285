/**
 * What loopscope says to whoever runs the app: a process warning on stderr when its configuration
 * is wrong or its data goes nowhere, at most one line per change of state. LOOPSCOPE_LOG=silent
 * (or `start({ log: 'silent' })`) says nothing.
 */
let silent = false;

export function setSilent(on: boolean): void {
  silent = on;
}

export function warn(message: string, code?: string): void {
  if (!silent) process.emitWarning(`loopscope: ${message}`, code === undefined ? undefined : { code });
}

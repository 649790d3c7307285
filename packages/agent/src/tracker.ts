/**
 * Transactions from start to delivery: which are open, when one is done (response finished and its
 * tracked work over, see Transaction.isDone), the linger limit, and `onTransactionEnd` listeners.
 */
import type { TransactionRecord } from '@loopscope/protocol';
import { outside } from './context.js';
import type { Exporter } from './export/exporter.js';
import { now } from './clock.js';
import { buildRecord, measure } from './measure.js';
import { callbackSerial, completedAt, everyIteration, settleRunningSlice, wakeNextIteration } from './timing.js';
import { Transaction, type TransactionHost } from './transaction.js';

export type TransactionListener = (record: TransactionRecord) => void;

const realSetInterval = globalThis.setInterval;

export class Tracker implements TransactionHost {
  readonly maxSegments: number;
  /**
   * The open transactions, in no order (a closed one's slot takes the last one), and those done but
   * maybe still inside their last slice, delivered when that slice ends. Arrays, not Sets: a Set
   * that takes and drops an entry per request replaces its table again and again, and once one of
   * those tables has lived long enough to be promoted, the dead table keeps its successor, and the
   * transactions in it, alive through every young collection: under load, every transaction was
   * promoted to the old generation (docs/benchmarks.md has what that cost).
   */
  private readonly open: Transaction[] = [];
  private finishing: Transaction[] = [];
  private due: Transaction[] = [];
  private spare: Transaction[] = [];
  private readonly listeners: TransactionListener[] = [];
  private readonly service: string;
  private readonly maxLingerMs: number;
  private readonly maxOpen: number;
  private sweeper: NodeJS.Timeout | null = null;
  /** What the loop tells a transaction's segments (TransactionHost). */
  readonly callbackSerial = callbackSerial;
  readonly completedAt = completedAt;
  /** Where finished transactions are aggregated and shipped (none when the collector is `off`). */
  exporter: Exporter | undefined;
  /** Requests not traced because maxOpenTransactions were already open. */
  notTraced = 0;
  /** Exceptions thrown by onTransactionEnd listeners (kept from the app). */
  listenerErrors = 0;

  constructor(opts: { service: string; maxLingerMs: number; maxSegments: number; maxOpenTransactions: number }) {
    this.service = opts.service;
    this.maxLingerMs = opts.maxLingerMs;
    this.maxSegments = opts.maxSegments;
    this.maxOpen = opts.maxOpenTransactions;
  }

  /**
   * Finished transactions are delivered by the agent's once-per-iteration work, after the poll: by
   * then the slice that finished them is over, and listeners never run inside the app's callbacks
   * or the async hook. They wait one iteration more: after a response the loop polls first, so the
   * client's next request finds it waiting, not busy with the agent's work, and is dated exactly
   * (docs/metrics.md). While some wait, that work keeps the loop awake (a script's last transaction
   * is delivered before the process exits).
   */
  start(): void {
    this.sweeper = outside(() => realSetInterval(() => this.sweep(), 1000));
    this.sweeper.unref();
    everyIteration(this.deliverDue);
  }

  stop(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
    everyIteration(null);
  }

  /** A new transaction, or undefined when too many are open (the request runs untraced). */
  begin(endpoint: string, isHttp: boolean): Transaction | undefined {
    if (this.open.length >= this.maxOpen) {
      this.notTraced++;
      return undefined;
    }
    const tx = new Transaction(this, endpoint, isHttp);
    tx.tracking.slot = this.open.push(tx) - 1;
    return tx;
  }

  get openCount(): number {
    return this.open.length;
  }

  maybeDone(tx: Transaction): void {
    if (!tx.open || (tx.responseEnd < 0 && !tx.aborted) || tx.tracking.queued) return;
    tx.tracking.queued = true;
    this.finishing.push(tx);
    wakeNextIteration();
  }

  /** Delivers every transaction that is done now. */
  flush(): void {
    this.deliverDue();
    this.deliverDue();
  }

  /** Delivers those done in the previous iteration; those of this one are due in the next. */
  private readonly deliverDue = (): void => {
    if (this.due.length === 0 && this.finishing.length === 0) return;
    // a listener may finish more transactions: they wait for the next round
    const batch = this.due;
    this.due = this.finishing;
    this.finishing = this.spare;
    for (let i = 0; i < batch.length; i++) this.deliver(batch[i]!);
    batch.length = 0;
    this.spare = batch;
    if (this.due.length > 0) wakeNextIteration();
  };

  /** Closes the transaction and hands the record to the listeners. */
  private deliver(tx: Transaction, truncated = false): void {
    tx.tracking.queued = false;
    if (!tx.open) return;
    if (!truncated && !tx.isDone()) return; // new work appeared since
    settleRunningSlice(tx);
    tx.close(truncated);
    this.removeOpen(tx);
    if (this.listeners.length > 0 || this.exporter !== undefined) this.report(tx, truncated);
    tx.forget();
  }

  private removeOpen(tx: Transaction): void {
    const last = this.open.pop()!;
    if (last !== tx) {
      this.open[tx.tracking.slot] = last;
      last.tracking.slot = tx.tracking.slot;
    }
    tx.tracking.slot = -1;
  }

  private report(tx: Transaction, truncated: boolean): void {
    // a transaction closed by the linger limit ends now; any other when its last work ended
    const m = measure(tx, truncated ? now() : undefined);
    let record: TransactionRecord | undefined;
    const build = (): TransactionRecord => (record ??= buildRecord(tx, this.service, m));
    this.exporter?.observe(tx.endpoint, tx.error, tx.hadLongTask, m, build, tx.aborted, tx.continuesCaller ? tx : undefined, tx.segments);
    if (this.listeners.length === 0) return;
    const built = build();
    for (const listener of this.listeners) {
      try {
        listener(built);
      } catch {
        this.listenerErrors++;
      }
    }
  }

  /** Linger limit, aborted requests, timers that were cleared: checked once a second. */
  private sweep(): void {
    const t = now();
    // backwards: delivering one moves the last into its slot, which has been seen already
    for (let i = this.open.length - 1; i >= 0; i--) {
      const tx = this.open[i]!;
      const res = tx.response;
      if (tx.responseEnd < 0 && !tx.aborted && res !== undefined && !res.writableFinished && (res.destroyed || res.req?.socket?.destroyed === true)) {
        // the connection closed before the response was finished (docs/metrics.md#the-done-condition):
        // aborted, its response ending with the app's answer or its last work, not now
        // (headers sent, a body on its way: the app answered with their status)
        tx.abort(res.writableEnded || res.headersSent ? res.statusCode : undefined);
      }
      if (tx.isDone()) this.deliver(tx);
      else if (tx.responseEnd >= 0 && t - tx.responseEnd > this.maxLingerMs) this.deliver(tx, true);
      else if (tx.responseEnd < 0 && t - tx.start > this.maxLingerMs * 10) this.deliver(tx, true);
    }
  }

  onEnd(listener: TransactionListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i !== -1) this.listeners.splice(i, 1);
    };
  }

  /** Ends every open transaction now (shutdown). */
  closeAll(): void {
    for (let i = this.open.length - 1; i >= 0; i--) this.deliver(this.open[i]!, !this.open[i]!.isDone());
  }
}

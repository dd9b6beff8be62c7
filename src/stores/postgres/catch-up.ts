/**
 * The periodic re-read behind a replica's local copy (workflow states, delegation tokens, signing keys): one read at a
 * time, shared by whoever asks meanwhile; none after stop(); a failed read is left to the next one.
 */
export class CatchUp {
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly read: () => Promise<void>) {}

  /** Re-read every `ms` from now on; the timer never keeps a finished process alive. */
  every(ms: number): void {
    this.timer = setInterval(() => void this.now(), ms);
    this.timer.unref();
  }

  /** Re-read now, or join the read in flight; never rejects. */
  now(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.reading ??= this.read()
      .catch(() => {
        // The pool logs the outage and /readyz shows it; the next read catches up (the copy in hand serves meanwhile).
      })
      .finally(() => {
        this.reading = undefined;
      });
    return this.reading;
  }

  /** Stop the timer and refuse further reads; the promise settles once a read in flight has. */
  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    return this.reading ?? Promise.resolve();
  }
}

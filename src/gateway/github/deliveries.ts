// Delivery de-duplication in the gateway: a delivery ID that already had its effect gets the first answer
// again; one still in flight is awaited rather than run twice. This only saves work: the workflow also
// ignores a delivery ID it has seen (and a review claim's nonce is derived from the delivery ID), so a
// duplicate has one effect across gateway restarts and replicas too.
export interface DeliveryAnswer {
  status: number;
  body: Record<string, unknown>;
}

export class DeliveryLog {
  private readonly done = new Map<string, DeliveryAnswer>();
  private readonly inFlight = new Map<string, Promise<DeliveryAnswer>>();

  constructor(private readonly capacity = 10_000) {}

  /** Runs `work` once per delivery ID; only successful (2xx) answers are remembered, so a failure can be redelivered. */
  async once(id: string, work: () => Promise<DeliveryAnswer>): Promise<DeliveryAnswer & { duplicate: boolean }> {
    const seen = this.done.get(id);
    if (seen) return { ...seen, duplicate: true };
    const running = this.inFlight.get(id);
    if (running) return { ...(await running), duplicate: true };
    const promise = work();
    this.inFlight.set(id, promise);
    try {
      const answer = await promise;
      if (answer.status >= 200 && answer.status < 300) {
        this.done.set(id, answer);
        if (this.done.size > this.capacity) this.done.delete(this.done.keys().next().value as string);
      }
      return { ...answer, duplicate: false };
    } finally {
      this.inFlight.delete(id);
    }
  }
}

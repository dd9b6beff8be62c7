export interface Balancer {
  url: string;
  port: number;
  /** Responses answered per target, in target order. */
  counts: number[];
  setTargets(targets: string[]): void;
  close(): Promise<void>;
}
export function startBalancer(opts: { targets: string[]; port?: number; host?: string }): Promise<Balancer>;

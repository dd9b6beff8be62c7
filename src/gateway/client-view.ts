/** A request's view of the catalog, as lists and resource routes read it (Gateway.viewOf). */
import { clientVariant, SHARED_VARIANT } from '../catalog/list-cache.js';
import type { ViewSource } from '../catalog/view.js';
import { serversInView } from '../catalog/view.js';
import type { UpstreamSession } from '../upstream/session.js';
import type { Access } from './access.js';
import type { ClientSession } from './client-session.js';
import type { Gateway } from './gateway.js';

/**
 * One request's view of the catalog. Access and servers are resolved when first read: routing a call by its name
 * reads neither, lists and resource routes do. A class with getters, not an object literal with them: a literal's
 * getters live in AccessorPairs that V8 allocates in old space, which kept each request's closures alive past the
 * scavenges that should have freed them (decision 0047).
 */
export class ClientView implements ViewSource {
  private resolvedAccess?: Access;
  private resolvedServers?: string[];
  private clientVariant?: string;

  constructor(
    private readonly gw: Gateway,
    private readonly cs: ClientSession,
  ) {}

  get single(): string | undefined {
    return this.cs.view.single;
  }

  get access(): Access {
    return (this.resolvedAccess ??= this.gw.access(this.cs));
  }

  get servers(): string[] {
    return (this.resolvedServers ??= serversInView(this.gw.pools.keys(), this.access, this.cs.view.single));
  }

  session(server: string): Promise<UpstreamSession> {
    return this.gw.upstreamFor(this.cs, server);
  }

  peek(server: string): UpstreamSession | undefined {
    return this.gw.pools.get(server)?.peek(this.cs.id);
  }

  variant(server: string): string {
    if (this.gw.pools.get(server)?.shared) return SHARED_VARIANT;
    return (this.clientVariant ??= clientVariant(this.cs.protocolVersion, this.cs.capabilities));
  }
}

/**
 * Group member liveness kept by brokers, not written per heartbeat: the KV cost of a quiet
 * consumer group is then (almost) nothing, instead of a read and a write per member
 * heartbeat.
 *
 * **Vouching.** When a broker writes a member's record (join, or a heartbeat that changes
 * something), it signs it `vouchedBy: { broker, incarnation }`. From then on that broker
 * keeps the member's liveness in memory (each heartbeat it serves is a {@linkcode touch}),
 * and the member counts as alive:
 * - on the vouching broker, while its own last heartbeat is younger than its session
 *   timeout (the broker expires it itself otherwise: {@linkcode GroupLiveness.sweep});
 * - on any other broker, while the vouching broker's registration (its own heartbeat in KV,
 *   cluster.ts) is alive with that incarnation: a broker's liveness is the lease of all the
 *   members it vouches for. A broker that dies or restarts drops its members with it.
 * A member whose client moves to another broker is re-vouched there by a write (a change).
 * Records without `vouchedBy` (written before this scheme) expire on `lastHeartbeatMs`.
 *
 * **Snapshots.** A heartbeat that would change nothing is answered from the group's last
 * snapshot on this broker, without the KV, as long as no group state changed since: every
 * write of group meta or member records also sets `["rill", "group_changes"]`, and brokers
 * read that key's versionstamp with the metadata version at each metadata poll (one
 * `getMany`). A snapshot is kept with the versionstamp read *before* it (or its own commit's
 * versionstamp) and used only while the poll still sees that one: a change anywhere sends
 * the next heartbeat of every group back to the KV once (a read, no write when nothing
 * changed for the member).
 *
 * @module
 */
import type { BrokerRegistration } from "./cluster.ts";
import type { GroupSnapshot } from "./group_store.ts";

/** Who keeps a member's liveness. */
export interface Voucher {
  /** the broker id */
  broker: number;
  /** the broker process's incarnation (a uuid per start) */
  incarnation: string;
}

/** What a {@linkcode GroupLiveness} needs. */
export interface GroupLivenessOptions {
  /** this broker's id */
  brokerId: number;
  /** this broker's incarnation, once registered (null before: it vouches for nobody) */
  incarnation: () => string | null;
  /** reads every broker registration (a KV list) */
  registrations: () => Promise<BrokerRegistration[]>;
  /** the brokers' session timeout: a registration older than this is dead */
  brokerSessionTimeoutMs: number;
  /** the clock */
  now?: () => number;
  /**
   * how long the KV has answered without an outage (kv_health.ts): members of other brokers
   * are not judged dead on registrations until this reaches the brokers' session timeout,
   * since nobody could heartbeat during the outage; default: always long enough
   */
  reachableForMs?: () => number;
}

/** Local liveness of the members this broker vouches for, and group snapshots. */
export class GroupLiveness {
  readonly #o: GroupLivenessOptions;
  readonly #now: () => number;
  readonly #seen = new Map<
    string,
    { group: string; member: string; at: number; timeoutMs: number }
  >();
  #expirer: ((group: string) => Promise<GroupSnapshot>) | null = null;
  #registrations: BrokerRegistration[] | null = null;
  #registrationsReadAt = 0;
  readonly #snapshots = new Map<string, { snap: GroupSnapshot; asOf: string | null }>();
  #changes: string | null | undefined = undefined;

  /** @param opts identity, registrations and clock */
  constructor(opts: GroupLivenessOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
  }

  /** This broker as a voucher, or null before it registered. */
  me(): Voucher | null {
    const incarnation = this.#o.incarnation();
    return incarnation === null ? null : { broker: this.#o.brokerId, incarnation };
  }

  /**
   * Records a heartbeat (or join) of a member this broker vouches for.
   *
   * @param group the group
   * @param member the member
   * @param timeoutMs its session timeout
   */
  touch(group: string, member: string, timeoutMs: number): void {
    this.#seen.set(`${group}\u0000${member}`, { group, member, at: this.#now(), timeoutMs });
  }

  /**
   * Sets how a group's expired members are removed (GroupMembership.expire).
   *
   * @param expirer removes the expired members of a group and returns what is left
   */
  setExpirer(expirer: (group: string) => Promise<GroupSnapshot>): void {
    this.#expirer = expirer;
  }

  /**
   * Removes the members this broker vouches for that went silent past their session
   * timeout (a KV write only when there are some): call it about every second.
   */
  async sweep(): Promise<void> {
    const now = this.#now();
    const silent = [...this.#seen.values()].filter((s) => now - s.at > s.timeoutMs);
    const me = this.me();
    for (const group of new Set(silent.map((s) => s.group))) {
      if (!this.#expirer) return;
      const snap = await this.#expirer(group);
      for (const s of silent.filter((x) => x.group === group)) {
        const v = snap.members.get(s.member)?.state.vouchedBy;
        // Gone, or vouched for elsewhere now: no longer this broker's to watch.
        if (!v || !me || v.broker !== me.broker || v.incarnation !== me.incarnation) {
          this.forget(group, s.member);
        }
      }
    }
  }

  /**
   * Forgets a member (it left, expired, or another broker vouches for it now).
   *
   * @param group the group
   * @param member the member
   */
  forget(group: string, member: string): void {
    this.#seen.delete(`${group}\u0000${member}`);
  }

  /**
   * Makes sure the registrations known here are fresh enough to judge the vouchers of a
   * snapshot: read again when a voucher's broker is unknown or its known heartbeat has
   * reached the session timeout. Costs nothing when they are.
   *
   * @param snap the group snapshot about to be judged
   * @param wait whether to wait for that read (a quiet heartbeat does not: it judges on what
   *   was read before, so that it needs no KV)
   */
  async prepare(snap: GroupSnapshot, wait = true): Promise<void> {
    const me = this.me();
    const now = this.#now();
    const stale = [...snap.members.values()].some(({ state }) => {
      const v = state.vouchedBy;
      if (!v || (me && v.broker === me.broker && v.incarnation === me.incarnation)) return false;
      const reg = this.#registrations?.find((r) => r.id === v.broker);
      return !reg || reg.incarnation !== v.incarnation ||
        now - reg.heartbeatMs >= this.#o.brokerSessionTimeoutMs;
    });
    // Read again when something looks dead or unknown, at most once a second.
    if (this.#registrations !== null && (!stale || now - this.#registrationsReadAt < 1000)) return;
    this.#reading ??= (async () => {
      try {
        const at = this.#now();
        this.#registrations = await this.#o.registrations();
        this.#registrationsReadAt = at;
      } finally {
        this.#reading = null;
      }
    })();
    // Without waiting (a quiet heartbeat), judge on what was read: the KV may be away.
    if (wait || this.#registrations === null) await this.#reading;
    else this.#reading.catch(() => {});
  }

  #reading: Promise<void> | null = null;

  /**
   * Whether a vouched member is alive (after {@linkcode prepare}).
   *
   * @param v its voucher
   * @param group its group
   * @param member its id
   * @param sessionTimeoutMs its session timeout
   * @param lastHeartbeatMs the heartbeat time in its record (used when this broker vouched
   *   for it but holds no local heartbeat)
   * @returns whether it is alive
   */
  alive(
    v: Voucher,
    group: string,
    member: string,
    sessionTimeoutMs: number,
    lastHeartbeatMs: number,
  ): boolean {
    const now = this.#now();
    const me = this.me();
    if (me && v.broker === me.broker && v.incarnation === me.incarnation) {
      const seen = this.#seen.get(`${group}\u0000${member}`)?.at ?? lastHeartbeatMs;
      return now - seen <= sessionTimeoutMs;
    }
    const reg = this.#registrations?.find((r) => r.id === v.broker);
    if (reg === undefined || reg.incarnation !== v.incarnation || reg.stopped) return false;
    // Dead only if its heartbeat was already too old when the registrations were read (a
    // death since then is seen at the next read, which prepare() makes once it may be).
    if (this.#registrationsReadAt - reg.heartbeatMs < this.#o.brokerSessionTimeoutMs) return true;
    // Just after a KV outage every registration is stale: wait for fresh heartbeats.
    return (this.#o.reachableForMs?.() ?? Infinity) < this.#o.brokerSessionTimeoutMs;
  }

  /**
   * Takes the versionstamp of `["rill", "group_changes"]` read by the metadata poll.
   *
   * @param versionstamp the versionstamp (null when the key was never written)
   */
  observe(versionstamp: string | null): void {
    this.#changes = versionstamp;
  }

  /** The last observed versionstamp of the change marker (undefined before any poll). */
  get changes(): string | null | undefined {
    return this.#changes;
  }

  /**
   * Keeps a snapshot of a group, valid while the change marker stays at `asOf`.
   *
   * @param snap the snapshot
   * @param asOf the marker's versionstamp read before the snapshot (or set by its commit)
   */
  remember(snap: GroupSnapshot, asOf: string | null | undefined): void {
    if (asOf === undefined) this.#snapshots.delete(snap.groupId);
    else this.#snapshots.set(snap.groupId, { snap, asOf });
  }

  /**
   * The snapshot of a group if nothing changed since it was taken.
   *
   * @param group the group
   * @returns the snapshot, or null
   */
  snapshot(group: string): GroupSnapshot | null {
    const s = this.#snapshots.get(group);
    if (!s || this.#changes === undefined || s.asOf !== this.#changes) return null;
    return s.snap;
  }
}

/**
 * Group state written into KV behind an answer: the Kafka group coordinator answers
 * JoinGroup, LeaveGroup and the rest from memory and records the group in KV after
 * (kafka/group_coordinator.ts). Reads of a group through another skin on the same broker (the
 * HTTP API's describe, list and join) first wait for those writes of the group, so they never
 * show a state older than what the coordinator already answered.
 *
 * @module
 */

/**
 * The write-behind KV writes of groups on this broker, by group.
 *
 * @example
 * ```ts
 * const behind = new GroupWritesBehind();
 * behind.track("g", mirrorWrite);
 * await behind.settled("g"); // the write landed (or failed)
 * ```
 */
export class GroupWritesBehind {
  readonly #pending = new Map<string, Promise<void>>();

  /**
   * Records a write of a group (the latest of a chain of ordered writes stands for them all).
   *
   * @param groupId the group
   * @param write settles when the write has landed or failed
   */
  track(groupId: string, write: Promise<unknown>): void {
    const p = write.then(() => {}, () => {});
    this.#pending.set(groupId, p);
    void p.then(() => {
      if (this.#pending.get(groupId) === p) this.#pending.delete(groupId);
    });
  }

  /**
   * Resolves once the writes of a group (or of every group) tracked so far have settled.
   *
   * @param groupId the group; every group when absent
   */
  async settled(groupId?: string): Promise<void> {
    if (groupId !== undefined) await this.#pending.get(groupId);
    else await Promise.all(this.#pending.values());
  }
}

/**
 * How a task turns the recorded topology into functions: each node's function, built
 * once per task, calls its children's.
 *
 * @module
 */
import type { NodeDef, StreamRecord, TaskContext } from "./topology.ts";

/** The node functions of a task, by node id (set by the task while it builds). */
const taskNodes = new WeakMap<TaskContext, Map<number, (r: StreamRecord) => void>>();

/**
 * The function of `node` in `task` (building it if needed).
 *
 * @param task the task
 * @param node the node
 * @returns its function
 */
export function taskNode(task: TaskContext, node: NodeDef): (r: StreamRecord) => void {
  let m = taskNodes.get(task);
  if (!m) taskNodes.set(task, m = new Map());
  let fn = m.get(node.id);
  if (fn) return fn;
  // Placeholder for cycles through merge: filled below.
  let real: ((r: StreamRecord) => void) | null = null;
  m.set(node.id, (r) => real!(r));
  const kids = node.children.map((c) => taskNode(task, c));
  const next = kids.length === 0 ? () => {} : kids.length === 1 ? kids[0] : (r: StreamRecord) => {
    for (const k of kids) k(r);
  };
  real = node.make(task, next);
  fn = real;
  m.set(node.id, fn);
  return fn;
}

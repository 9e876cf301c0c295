// The shape of a pipeline: checks a spec is a well-formed DAG of named errands, in O(V + E).

import { BadInput } from "../errors.ts";
import type { PipelineSpec } from "./model.ts";

export const VALIDATION_FAILED = "pipeline validation failed";

/** A checked pipeline: errands by index, edges as index pairs, each edge once. */
export interface Graph {
  names: string[];
  /** [target, dependsOn] index pairs, in the order sent, duplicates dropped. */
  edges: Array<[number, number]>;
  /** How many dependencies each errand has. */
  dependencyCount: number[];
}

function invalid(detail: string): BadInput {
  return new BadInput(VALIDATION_FAILED, detail);
}

/** Checks the spec and answers its graph, or throws BadInput naming the first problem found. */
export function validatePipeline(spec: PipelineSpec): Graph {
  if (!spec.name) throw invalid("the pipeline has no name");
  const errands = spec.errands ?? [];
  if (errands.length === 0) throw invalid("no errands specified in pipeline");

  const index = new Map<string, number>();
  const names: string[] = [];
  errands.forEach((errand, i) => {
    if (!errand.name) throw invalid(`errands[${i}] has no name`);
    if (!errand.type) throw invalid(`errands[${i}] (${JSON.stringify(errand.name)}) has no type`);
    if (index.has(errand.name)) {
      throw invalid(`duplicate name in errands list: ${errand.name}`);
    }
    index.set(errand.name, i);
    names.push(errand.name);
  });

  const edges: Array<[number, number]> = [];
  const seen = new Set<string>();
  const dependencyCount = names.map(() => 0);
  (spec.dependencies ?? []).forEach((dep, i) => {
    if (dep.target === dep.dependsOn) {
      throw invalid(`errand cannot depend on itself: ${dep.target}`);
    }
    const target = index.get(dep.target);
    if (target === undefined) {
      throw invalid(
        `dependency references unknown errand name: ${dep.target} (dependencies[${i}].target)`,
      );
    }
    const dependsOn = index.get(dep.dependsOn);
    if (dependsOn === undefined) {
      throw invalid(
        `dependency references unknown errand name: ${dep.dependsOn} (dependencies[${i}].dependsOn)`,
      );
    }
    const key = `${target}:${dependsOn}`;
    if (seen.has(key)) return;
    seen.add(key);
    edges.push([target, dependsOn]);
    dependencyCount[target] = (dependencyCount[target] ?? 0) + 1;
  });

  const cycle = findCycle(names.length, edges);
  if (cycle !== null) {
    const path = [...cycle, cycle[0] ?? 0].map((i) => names[i]).join(" depends on ");
    throw invalid(`dependency cycle found involving '${names[cycle[0] ?? 0]}': ${path}`);
  }
  return { names, edges, dependencyCount };
}

/**
 * One cycle of the graph as errand indexes, each depending on the next, or null for a DAG.
 * Kahn's algorithm peels off errands whose dependencies are all peeled; what remains has a
 * dependency inside what remains, so following one from any remaining errand must loop.
 */
export function findCycle(size: number, edges: ReadonlyArray<[number, number]>): number[] | null {
  const waiting = new Array<number>(size).fill(0);
  const dependents: number[][] = Array.from({ length: size }, () => []);
  const dependencies: number[][] = Array.from({ length: size }, () => []);
  for (const [target, dependsOn] of edges) {
    waiting[target] = (waiting[target] ?? 0) + 1;
    dependents[dependsOn]?.push(target);
    dependencies[target]?.push(dependsOn);
  }
  const ready: number[] = [];
  for (let i = 0; i < size; i++) if (waiting[i] === 0) ready.push(i);
  let peeled = 0;
  while (ready.length > 0) {
    const next = ready.pop() as number;
    peeled++;
    for (const dependent of dependents[next] ?? []) {
      const left = (waiting[dependent] ?? 0) - 1;
      waiting[dependent] = left;
      if (left === 0) ready.push(dependent);
    }
  }
  if (peeled === size) return null;

  // Walk from a remaining errand to a remaining dependency until an errand repeats.
  const remains = (i: number) => (waiting[i] ?? 0) > 0;
  const step = new Map<number, number>();
  let at = waiting.findIndex((w) => w > 0);
  while (!step.has(at)) {
    const dependency = (dependencies[at] ?? []).find(remains) as number;
    step.set(at, dependency);
    at = dependency;
  }
  const cycle: number[] = [];
  let i = at;
  do {
    cycle.push(i);
    i = step.get(i) as number;
  } while (i !== at);
  return cycle;
}

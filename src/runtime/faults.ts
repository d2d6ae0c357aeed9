/**
 * Failure injection, for demos, the course project and chaos drills: off unless the node allows it
 * (`allowFaultInjection`, `--allow-fault-injection`, CONVEYOR_ALLOW_FAULT_INJECTION). A fault acts on the node that
 * receives it: crash one of its services (its supervisor restarts it, visibly), or make the next attempts of a task
 * type that start on it fail (with an error that says it was injected).
 */
import { ValidationError } from "../core/errors.ts";
import { NAME_PATTERN } from "../core/task-input.ts";
import type { Definition } from "./definitions.ts";

export type Fault = { kind: "crash-service"; service: string } | { kind: "fail-next"; type: string; count: number };

export class InjectedFault extends Error {
  override name = "InjectedFault";
}

/** The attempts to fail, by task type. */
export class FaultPlan {
  readonly #failNext = new Map<string, number>();

  failNext(type: string, count: number): void {
    this.#failNext.set(type, (this.#failNext.get(type) ?? 0) + count);
  }

  /** The definition an attempt of `definition.type` runs with: a failing one while faults are planned for it. */
  definitionFor(definition: Definition): Definition {
    const left = this.#failNext.get(definition.type);
    if (left === undefined) return definition;
    if (left <= 1) this.#failNext.delete(definition.type);
    else this.#failNext.set(definition.type, left - 1);
    const fail = () => {
      throw new InjectedFault(`an injected fault failed this attempt of ${definition.type}`);
    };
    return { ...definition, handler: fail, threadRef: null, isolation: "inline" };
  }
}

/** A fault as a client sent it, checked; throws a ValidationError naming the field. */
export function parseFault(body: unknown): Fault {
  const fault = (body ?? {}) as Record<string, unknown>;
  const invalid = (field: string, message: string) =>
    new ValidationError(`${field} ${message}`, [{ in: "body", field, message }]);
  if (fault.kind === "crash-service") {
    if (typeof fault.service !== "string" || fault.service === "") throw invalid("service", "must name a service");
    return { kind: "crash-service", service: fault.service };
  }
  if (fault.kind === "fail-next") {
    if (typeof fault.type !== "string" || !NAME_PATTERN.test(fault.type)) throw invalid("type", "must be a task type");
    const count = fault.count ?? 1;
    if (!Number.isSafeInteger(count) || (count as number) < 1 || (count as number) > 100) {
      throw invalid("count", "must be an integer from 1 to 100");
    }
    return { kind: "fail-next", type: fault.type, count: count as number };
  }
  throw invalid("kind", 'must be "crash-service" or "fail-next"');
}

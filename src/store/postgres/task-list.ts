/**
 * The statement of a task list. Built here rather than in a .sql file: the filters are optional, and only their
 * presence varies. Each combination is its own prepared statement, so every one gets a plan of its own; and since
 * that plan is generic and made once (statements.ts), a condition the plan must see to pick an index is spelled
 * out rather than passed: the states, from a closed list, are literals, so that a partial index over a state
 * (tasks_running_node, tasks_ended_badly) can stand in for the rows of that state. A list over a
 * filter no index serves is given an id range by the runtime (runtime/task-listing.ts), so that its scan is
 * bounded whatever the table's size.
 */
import { TASK_STATES } from "../../core/states.ts";
import type { TaskListParams } from "../store.ts";
import { quoteSchema, TASK_COLUMNS } from "./statements.ts";

export type TaskListStatement = { name: string; text: string; values: unknown[] };

export function taskListStatement(schema: string, prefix: string, params: TaskListParams): TaskListStatement {
  const where: string[] = [];
  const values: unknown[] = [];
  const shape: string[] = [];
  const add = (code: string, condition: string, value: unknown) => {
    values.push(value);
    where.push(condition.replace("?", `$${values.length}`));
    shape.push(code);
  };
  if (params.queue !== undefined) add("q", "queue = ?::text", params.queue);
  if (params.type !== undefined) add("t", "type = ?::text", params.type);
  if (params.key !== undefined) add("k", "key = ?::text", params.key);
  if (params.states !== undefined) {
    // Literals from the closed list of states (checked again here: this text is SQL).
    const states = TASK_STATES.filter((state) => params.states!.includes(state));
    where.push(states.length === 0 ? "false" : `state IN (${states.map((s) => `'${s}'`).join(", ")})`);
    shape.push(`s${states.map((s) => TASK_STATES.indexOf(s)).join("")}`);
    // The running tasks, few, named by id from their partial index (see migration 009_running_ids).
    if (runningAlone(params)) {
      where.push(`id = ANY (ARRAY(SELECT ${quoteSchema(schema)}.running_task_ids()))`);
      shape.push("r");
    }
  }
  if (params.createdAfter !== undefined) add("f", "created_at >= ?::timestamptz", params.createdAfter);
  if (params.createdBefore !== undefined) add("u", "created_at < ?::timestamptz", params.createdBefore);
  if (params.idMin !== undefined) add("l", "id >= ?::bigint", params.idMin);
  if (params.idMax !== undefined) add("h", "id <= ?::bigint", params.idMax);
  if (params.after !== undefined) add("a", params.order === "asc" ? "id > ?::bigint" : "id < ?::bigint", params.after);
  values.push(params.limit);
  const order = params.order === "asc" ? "ASC" : "DESC";
  // The running tasks, few, are sorted once found: ordered by an expression, so that no plan may walk the primary
  // key in order through every finished task instead (plans.test.ts: one made while 3 of 100 tasks ran did).
  const key = runningAlone(params) ? "id + 0" : "id";
  const text = `SELECT ${TASK_COLUMNS} FROM ${quoteSchema(schema)}.tasks ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY ${key} ${order} LIMIT $${values.length}::integer`;
  return { name: `${prefix}.taskList.${shape.join("")}.${params.order}`, text, values };
}

/** A list of the running tasks with no filter that an id range or a key would serve better. */
function runningAlone(params: TaskListParams): boolean {
  const { states } = params;
  return states?.length === 1 && states[0] === "running" && params.idMin === undefined && params.key === undefined;
}

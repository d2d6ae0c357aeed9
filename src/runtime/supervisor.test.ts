import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { StoreUnavailableError } from "../core/store-unavailable.ts";
import type { Service } from "./service.ts";
import { Supervisor } from "./supervisor.ts";
import type { SupervisorEvent, SupervisorOptions } from "./supervisor.ts";

const fast = { restartDelay: { baseMs: 5, maxMs: 20 } } satisfies Partial<SupervisorOptions>;

/** Records a supervisor's events and lets a test wait for one, instead of sleeping. */
function recorder() {
  const events: SupervisorEvent[] = [];
  const waiters: Array<{ match: (e: SupervisorEvent) => boolean; resolve: (e: SupervisorEvent) => void }> = [];
  const onEvent = (event: SupervisorEvent): void => {
    events.push(event);
    for (const waiter of [...waiters]) {
      if (!waiter.match(event)) continue;
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(event);
    }
  };
  /** Resolves on the `nth` event (counting past ones) that matches. */
  const waitFor = (match: (e: SupervisorEvent) => boolean, nth = 1): Promise<SupervisorEvent> => {
    let seen = events.filter(match).length;
    const past = events.filter(match)[nth - 1];
    if (past) return Promise.resolve(past);
    return new Promise((resolve, reject) => {
      const timeout = setTimeout(() => reject(new Error("timed out waiting for a supervisor event")), 10_000);
      timeout.unref();
      waiters.push({
        match: (event) => match(event) && ++seen >= nth,
        resolve: (event) => {
          clearTimeout(timeout);
          resolve(event);
        },
      });
    });
  };
  const is = (type: SupervisorEvent["type"], service?: string) => (e: SupervisorEvent) =>
    e.type === type && (service === undefined || e.service === service);
  return { events, onEvent, waitFor, is };
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/** A well-behaved loop: waits for its signal, then cleans up for `cleanupMs`. Counts its starts. */
function idle(name: string, cleanupMs = 0, log?: string[]) {
  const service = {
    name,
    starts: 0,
    cleanups: 0,
    signals: [] as AbortSignal[],
    async run(signal: AbortSignal): Promise<void> {
      service.starts++;
      service.signals.push(signal);
      await untilAborted(signal);
      log?.push(`${name} aborted`);
      if (cleanupMs > 0) await sleep(cleanupMs);
      service.cleanups++;
      log?.push(`${name} cleaned up`);
    },
  };
  return service;
}

/** Crashes on each of its first `crashes` runs, then behaves. */
function flaky(name: string, crashes: number, how: "throw" | "return" = "throw") {
  const service = {
    name,
    starts: 0,
    async run(signal: AbortSignal): Promise<void> {
      service.starts++;
      await sleep(1);
      if (service.starts <= crashes) {
        if (how === "throw") throw new Error(`boom ${service.starts}`);
        return;
      }
      await untilAborted(signal);
    },
  };
  return service;
}

describe("Supervisor", () => {
  it("restarts a crashing service and keeps it running (one_for_one)", async () => {
    const rec = recorder();
    const worker = flaky("worker", 2);
    const sibling = idle("sibling");
    const sup = new Supervisor({ name: "node", ...fast, onEvent: rec.onEvent }, [worker, sibling]);
    sup.start();
    await rec.waitFor(rec.is("restarted", "worker"), 2);

    const tree = sup.tree();
    assert.equal(tree.state, "running");
    assert.equal(tree.restarts, 2);
    const [workerTree, siblingTree] = tree.children;
    assert.equal(workerTree?.state, "running");
    assert.equal(workerTree?.restarts, 2);
    assert.equal(workerTree?.lastError, "boom 2");
    assert.ok(workerTree?.lastErrorAt && !Number.isNaN(Date.parse(workerTree.lastErrorAt)));
    assert.equal(siblingTree?.restarts, 0);
    assert.equal(sibling.starts, 1, "one_for_one leaves siblings alone");
    assert.deepEqual(JSON.parse(JSON.stringify(tree)), tree, "the tree is JSON-safe");
    assert.equal(rec.events.filter(rec.is("crashed", "worker")).length, 2);

    await sup.stop();
    assert.equal(worker.starts, 3);
  });

  it("does not count crashes because the store is away against the budget, and keeps restarting them", async () => {
    // Every service that touches the store crashes for as long as the store is down, unreachable or locked: that
    // is no crash loop, and a node whose supervisor gave up then would stay failed after the store came back.
    const rec = recorder();
    let away = true;
    const service = {
      name: "store-user",
      starts: 0,
      async run(signal: AbortSignal): Promise<void> {
        service.starts++;
        await sleep(1);
        if (away) throw new StoreUnavailableError("the store does not answer");
        await untilAborted(signal);
      },
    };
    const doomed = flaky("doomed", 1);
    const sup = new Supervisor({ name: "node", ...fast, maxRestarts: 2, onEvent: rec.onEvent }, [service, doomed]);
    sup.start();
    await rec.waitFor(rec.is("restarted", "store-user"), 6);
    assert.equal(sup.tree().state, "running", "six restarts for the store's sake, over a budget of two");
    away = false;
    // The run launched with the 6th restart finds the store back, and stays up.
    await sleep(50);
    assert.equal(sup.tree().state, "running");
    assert.equal(sup.tree().children[0]?.state, "running");
    assert.equal(rec.events.filter(rec.is("giveup")).length, 0);
    await sup.stop();
  });

  it("gives up past the restart budget: stops the others, fails, and run() rejects with the last crash", async () => {
    const rec = recorder();
    const doomed = flaky("doomed", Infinity);
    const sibling = idle("sibling", 5);
    const sup = new Supervisor({ name: "node", ...fast, maxRestarts: 2, onEvent: rec.onEvent }, [doomed, sibling]);

    const controller = new AbortController();
    const error = await sup.run(controller.signal).then(
      () => assert.fail("run() should reject"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof Error);
    assert.match(error.message, /gave up/);
    assert.ok(error.cause instanceof Error);
    assert.equal(error.cause.message, "boom 3", "the cause is the last crash");

    const giveup = await rec.waitFor(rec.is("giveup"));
    assert.equal(giveup.error, error);
    assert.equal(doomed.starts, 3, "maxRestarts 2 allows two restarts, the third crash gives up");
    assert.equal(sibling.cleanups, 1, "the sibling was stopped and finished its cleanup");
    assert.ok(sibling.signals[0]?.aborted);

    const tree = sup.tree();
    assert.equal(tree.state, "failed");
    assert.deepEqual(
      tree.children.map((c) => c.state),
      ["failed", "stopped"],
    );
    await sup.stop(); // harmless after a give-up
  });

  it("one_for_all stops and restarts the siblings with a fresh signal", async () => {
    const rec = recorder();
    const first = idle("first");
    const worker = flaky("worker", 1);
    const last = idle("last");
    const sup = new Supervisor({ name: "node", strategy: "one_for_all", ...fast, onEvent: rec.onEvent }, [
      first,
      worker,
      last,
    ]);
    sup.start();
    await rec.waitFor(rec.is("restarted", "last"));

    for (const sibling of [first, last]) {
      assert.equal(sibling.starts, 2);
      assert.equal(sibling.cleanups, 1, "the old run finished before the restart");
      assert.ok(sibling.signals[0]?.aborted);
      assert.equal(sibling.signals[1]?.aborted, false);
    }
    const tree = sup.tree();
    assert.equal(tree.strategy, "one_for_all");
    assert.equal(tree.restarts, 1, "one crash is one restart of the supervisor");
    assert.deepEqual(
      tree.children.map((c) => [c.state, c.restarts]),
      [
        ["running", 1],
        ["running", 1],
        ["running", 1],
      ],
    );
    await sup.stop();
  });

  it("stop() aborts every child and waits for their cleanup, in reverse start order", async () => {
    const rec = recorder();
    const log: string[] = [];
    // The first stopped takes longest to clean up: stopped all at once, they would finish in the other order.
    const a = idle("a", 1, log);
    const b = idle("b", 5, log);
    const c = idle("c", 10, log);
    const sup = new Supervisor({ name: "node", ...fast, onEvent: rec.onEvent }, [a, b, c]);
    sup.start();
    await sup.stop();

    // Each child is aborted only once the one stopped before it has cleaned up.
    assert.deepEqual(log, ["c aborted", "c cleaned up", "b aborted", "b cleaned up", "a aborted", "a cleaned up"]);
    for (const service of [a, b, c]) assert.ok(service.signals[0]?.aborted);
    assert.equal(sup.tree().state, "stopped");
    assert.ok(sup.tree().children.every((child) => child.state === "stopped"));
    assert.ok(rec.events.some(rec.is("stopped")));
  });

  it("run() resolves after its signal aborts and its children have cleaned up", async () => {
    const child = idle("child", 5);
    const sup = new Supervisor({ name: "node", ...fast }, [child]);
    const controller = new AbortController();
    const running = sup.run(controller.signal);
    controller.abort();
    await running;
    assert.equal(child.cleanups, 1);
    assert.equal(sup.tree().state, "stopped");
  });

  it("restarts a service that returns before it was stopped", async () => {
    const rec = recorder();
    const quitter = flaky("quitter", 1, "return");
    const sup = new Supervisor({ name: "node", ...fast, onEvent: rec.onEvent }, [quitter]);
    sup.start();
    await rec.waitFor(rec.is("restarted", "quitter"));
    const [child] = sup.tree().children;
    assert.match(child?.lastError ?? "", /returned before it was stopped/);
    assert.equal(child?.state, "running");
    await sup.stop();
    assert.equal(quitter.starts, 2);
  });

  it("restarts a nested supervisor that gave up, and tree() shows the nesting", async () => {
    const rec = recorder();
    const inner = new Supervisor({ name: "inner", ...fast, maxRestarts: 0, onEvent: rec.onEvent }, [
      flaky("poller", 1),
      idle("heartbeat"),
    ]);
    const outer = new Supervisor({ name: "outer", ...fast, onEvent: rec.onEvent }, [idle("pruner"), inner]);
    outer.start();
    await rec.waitFor((e) => e.supervisor === "outer" && e.type === "restarted" && e.service === "inner");
    assert.ok(rec.events.some((e) => e.supervisor === "inner" && e.type === "giveup"));

    const tree = outer.tree();
    const innerTree = tree.children[1];
    assert.equal(innerTree?.name, "inner");
    assert.equal(innerTree?.state, "running");
    assert.equal(innerTree?.restarts, 1);
    assert.match(innerTree?.lastError ?? "", /supervisor inner gave up/);
    assert.deepEqual(
      innerTree?.children?.map((c) => [c.name, c.state]),
      [
        ["poller", "running"],
        ["heartbeat", "running"],
      ],
    );
    assert.equal(tree.children[0]?.children, undefined, "a plain service has no children");
    assert.equal(inner.tree().state, "running");

    await outer.stop();
    assert.equal(inner.tree().state, "stopped");
  });

  it("tolerates stop before start, double stop, and a restart after stop", async () => {
    const child = idle("child");
    const sup = new Supervisor({ name: "node", ...fast }, [child]);
    await sup.stop();
    assert.equal(sup.tree().state, "stopped");
    assert.equal(child.starts, 0);

    sup.start();
    sup.start(); // a no-op while running
    await Promise.all([sup.stop(), sup.stop()]);
    await sup.stop();
    assert.equal(child.starts, 1);
    assert.equal(child.cleanups, 1);

    sup.start();
    assert.equal(child.starts, 2);
    await sup.stop();
    await sup.run(AbortSignal.abort()); // an already aborted signal starts nothing
    assert.equal(child.starts, 2);
  });

  it("clears a pending restart timer on stop", async () => {
    const rec = recorder();
    const sup = new Supervisor(
      { name: "node", restartDelay: { baseMs: 60_000, maxMs: 60_000 }, onEvent: rec.onEvent },
      [flaky("worker", 1)],
    );
    const timersBefore = process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    sup.start();
    await rec.waitFor(rec.is("crashed", "worker"));
    assert.equal(sup.tree().children[0]?.state, "restarting");
    await sup.stop();
    const timersAfter = process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    assert.equal(timersAfter, timersBefore, "no timer left behind to keep the process alive");
  });

  it("doubles the restart delay per consecutive crash, up to maxMs", async () => {
    const rec = recorder();
    const starts: number[] = [];
    const worker: Service = {
      name: "worker",
      async run(signal) {
        starts.push(performance.now());
        if (starts.length <= 3) throw new Error("boom");
        await untilAborted(signal);
      },
    };
    const sup = new Supervisor({ name: "node", restartDelay: { baseMs: 10, maxMs: 25 }, onEvent: rec.onEvent }, [
      worker,
    ]);
    sup.start();
    await rec.waitFor(rec.is("restarted", "worker"), 3);
    await sup.stop();
    const gaps = starts.slice(1).map((time, i) => time - (starts[i] ?? 0));
    // Timers may fire a millisecond early; the upper bound is left loose for a busy machine.
    assert.ok((gaps[0] ?? 0) >= 9, `first delay ${gaps[0]}`);
    assert.ok((gaps[1] ?? 0) >= 19, `second delay ${gaps[1]}`);
    assert.ok((gaps[2] ?? 0) >= 24, `third delay capped at maxMs ${gaps[2]}`);
  });

  it("survives a throwing onEvent handler and a service that throws synchronously", async () => {
    let crashes = 0;
    let restarted!: () => void;
    const restartedOnce = new Promise<void>((resolve) => (restarted = resolve));
    const onEvent = (event: SupervisorEvent): void => {
      if (event.type === "restarted") restarted();
      throw new Error("observer bug");
    };
    const worker: Service = {
      name: "worker",
      run(signal) {
        if (crashes++ === 0) throw new Error("sync boom");
        return untilAborted(signal);
      },
    };
    const sup = new Supervisor({ name: "node", ...fast, onEvent }, [worker]);
    sup.start();
    await restartedOnce;
    assert.equal(sup.tree().children[0]?.lastError, "sync boom");
    await sup.stop();
  });

  it("rejects invalid options", () => {
    assert.throws(() => new Supervisor({ name: "x", maxRestarts: -1 }, []), RangeError);
    assert.throws(() => new Supervisor({ name: "x", periodMs: 0 }, []), RangeError);
    assert.throws(() => new Supervisor({ name: "x", restartDelay: { baseMs: 10, maxMs: 5 } }, []), RangeError);
  });
});

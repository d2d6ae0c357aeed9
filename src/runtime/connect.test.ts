/**
 * connect(): the one place that turns a path or URL into a store and a bus, and what a Conveyor opens by itself.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "../core/errors.ts";
import { Conveyor } from "./conveyor.ts";
import { connect } from "./connect.ts";
import { tempDatabase } from "./fixtures/runtime-handlers.ts";
import { dropSchema, freshSchema, postgresUrl, requirePostgres } from "../../test/support/postgres.ts";

test("a path is a SQLite file with the in-process bus", async () => {
  const path = tempDatabase();
  const { store, bus, description } = connect({ database: path });
  try {
    assert.equal(store.capabilities.driver, "sqlite");
    assert.equal(bus.constructor.name, "LocalBus");
    assert.equal(description, `SQLite ${path}`);
  } finally {
    await store.close();
  }
});

test("a postgres:// URL is PostgreSQL with LISTEN/NOTIFY, or RabbitMQ when asked", async () => {
  const url = "postgresql://someone@127.0.0.1:5432/somewhere";
  const plain = connect({ database: url, schema: "s1" });
  const rabbit = connect({ database: url, amqp: "amqp://guest:guest@127.0.0.1:5672" });
  try {
    assert.equal(plain.store.capabilities.driver, "postgres");
    assert.equal(plain.bus.constructor.name, "PostgresBus");
    assert.equal(plain.description, "PostgreSQL 127.0.0.1:5432/somewhere schema s1, bus LISTEN/NOTIFY");
    assert.equal(rabbit.bus.constructor.name, "AmqpBus");
  } finally {
    // Nothing was opened: the store connects on first use, the bus on start().
    await Promise.all([plain.store.close(), rabbit.store.close(), plain.bus.close(), rabbit.bus.close()]);
  }
});

test("what cannot be opened is refused with a ConfigError that says why", () => {
  assert.throws(
    () => connect({ database: "mysql://root@127.0.0.1/db" }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /cannot open a mysql:\/\/ database/);
      return true;
    },
  );
  assert.throws(() => connect({ database: "" }), ConfigError);
  assert.throws(
    () => connect({ database: tempDatabase(), amqp: "amqp://127.0.0.1" }),
    /RabbitMQ bus joins nodes on many hosts/,
  );
  assert.throws(() => connect({ database: tempDatabase(), schema: "s" }), /schema applies to PostgreSQL only/);
  assert.throws(() => new Conveyor({ database: "redis://127.0.0.1" }), /cannot open a redis:\/\/ database/);
});

test("a Conveyor given both a store and a database, or a bus without a store, is refused", async () => {
  const { store, bus } = connect({ database: tempDatabase() });
  try {
    assert.throws(() => new Conveyor({ store, database: tempDatabase() }), /either a store or a database/);
    assert.throws(() => new Conveyor({ bus }), /a bus goes with a store/);
  } finally {
    await store.close();
  }
});

test("new Conveyor({ database: 'postgres://…' }) opens PostgreSQL, not a SQLite file named after the URL", async (t) => {
  if (!(await requirePostgres(t))) return;
  const schema = freshSchema("connect");
  const conveyor = new Conveyor({ database: postgresUrl(), schema });
  try {
    assert.equal(conveyor.store.capabilities.driver, "postgres");
    const task = await conveyor.enqueue("t", { a: 1 });
    assert.equal((await conveyor.get(task.id))?.state, "queued");
  } finally {
    await conveyor.stop();
    await dropSchema(schema);
  }
});

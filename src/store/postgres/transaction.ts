/**
 * One transaction on a client of the pool. A failed transaction is rolled back and its client goes back to the
 * pool; but when the failure is the connection itself (a query past its deadline, a reset, a server gone) the
 * client is destroyed instead, without a ROLLBACK: that ROLLBACK would wait its own deadline behind the query
 * still in flight on a connection whose state is unknowable, and the server rolls back a transaction whose
 * connection closes anyway.
 */
import type pg from "pg";
import { isStoreUnavailable } from "../../core/store-unavailable.ts";

export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query("BEGIN");
    const result = await work(client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    if (isStoreUnavailable(error)) broken = error instanceof Error ? error : new Error(String(error));
    else await client.query("ROLLBACK").catch((rollbackError: Error) => (broken = rollbackError));
    throw error;
  } finally {
    // release(error) destroys the connection rather than pooling it.
    client.release(broken);
  }
}

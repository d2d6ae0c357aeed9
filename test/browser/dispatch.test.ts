/**
 * Dispatch's pages end to end in headless Chromium, against one node with dispatch on SQLite (in this process) and a
 * webhook receiver on loopback (allow-listed; a tripwire refuses any other address): a topic and a publisher are
 * created through the forms (a duplicate topic and a bad target are refused inline, nothing written), a message sent
 * from the page fails to reach the receiver (not listening yet) and its page shows the attempts' errors as it retries
 * (the overview counts it retrying); the receiver started, Retry now delivers it at once rather than minutes later
 * (state delivered, an HTTP 200 attempt, the request signed). A publisher is disabled, enabled and its secret rotated
 * from its row; a topic's recovery is switched; a publisher's failures over a window are replayed from the failing
 * list. Every page renders with no console error, light and dark, desktop and phone
 * (screenshots in test-output/screenshots). One browser for the file.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { BrowserContext } from "playwright-core";
import { loopbackTripwire } from "../../src/dispatch/fixtures/dispatch-node.ts";
import { Receiver } from "../../src/dispatch/fixtures/receiver.ts";
import { Dispatch } from "../../src/dispatch/dispatch.ts";
import {
  type DashNode,
  ensureDashboardBuilt,
  eventually,
  launchBrowser,
  openPage,
  PHONE,
  screenshot,
  startNode,
  WAIT_MS,
  waitLive,
} from "./dashboard-support.ts";

const DESKTOP = { width: 1280, height: 800 };

/** The browser's console line for a refusal the test asked for (a form's 4xx): expected, so not a problem. */
function expectRefusal(problems: string[], status: number): void {
  const index = problems.findIndex((p) => p.includes(`status of ${status}`));
  assert.ok(index >= 0, `the page was refused with ${status}`);
  problems.splice(index, 1);
}

/** A port on 127.0.0.1 that nothing listens on (yet): a receiver's, stopped. */
async function quietReceiver(): Promise<Receiver> {
  const receiver = await new Receiver().start();
  await receiver.stop();
  return receiver;
}

describe("the dispatch pages", () => {
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  let context: BrowserContext | null;
  let node: DashNode;
  let dispatch: Dispatch;
  let receiver: Receiver;
  let nowhere: Receiver;
  const dialled: string[] = [];
  let messageId = 0;
  let publisherId = 0;

  before(async () => {
    ensureDashboardBuilt();
    browser = await launchBrowser();
    context = browser.context;
    receiver = await quietReceiver();
    nowhere = await quietReceiver();
    node = await startNode({
      demo: false,
      define(conveyor) {
        dispatch = new Dispatch(conveyor, {
          allowNets: "127.0.0.1/32",
          interceptLookup: loopbackTripwire(dialled),
          pollIntervalMs: 200,
        });
      },
    });
    await dispatch.start();
  });

  after(async () => {
    await receiver?.stop();
    await dispatch?.stop();
    await node?.stop();
    await browser?.close();
    assert.deepEqual(dialled, [], "nothing but loopback was dialled");
  });

  test("a topic and a publisher made in the forms; a message fails, its receiver starts, Retry now delivers it", async (t) => {
    const opened = await openPage(t, context, `${node.base}/dispatch`, { viewport: DESKTOP });
    if (opened === null) return;
    const { page, problems } = opened;
    await page.getByRole("heading", { level: 1, name: "Dispatch" }).waitFor({ timeout: WAIT_MS });
    await waitLive(page);
    const dialog = page.getByRole("dialog");

    // A topic.
    await page.getByRole("button", { name: "New topic" }).click();
    await dialog.getByLabel("Name").fill("orders");
    await dialog.getByRole("textbox", { name: /^Origin host/ }).fill("http://127.0.0.1:9/outbox/");
    await dialog.getByRole("button", { name: "Create topic" }).click();
    await page.locator('tr[data-topic="orders"]').waitFor({ timeout: WAIT_MS });
    assert.match(page.url(), /\/dispatch$/, "the editor's URL state is gone once saved");
    assert.equal((await dispatch.topic("orders")).originHost, "http://127.0.0.1:9/outbox/");

    // The same name again: Postoffice's 409, said in the form, nothing written.
    await page.getByRole("button", { name: "New topic" }).click();
    await dialog.getByLabel("Name").fill("orders");
    await dialog.getByRole("textbox", { name: /^Origin host/ }).fill("http://127.0.0.1:9/other/");
    await dialog.getByRole("button", { name: "Create topic" }).click();
    const refused = dialog.getByRole("alert");
    await refused.waitFor({ timeout: WAIT_MS });
    assert.match((await refused.textContent()) ?? "", /name: has already been taken.*\(taken\)/);
    assert.equal((await dispatch.topics()).length, 1);
    expectRefusal(problems, 409);
    await screenshot(page, "dispatch-topic-refused-desktop-light");
    assert.equal((await dispatch.topic("orders")).originHost, "http://127.0.0.1:9/outbox/");
    await dialog.getByRole("button", { name: "Cancel" }).click();

    // A publisher: an http target on the receiver's port, the default retries, a secret made.
    await page.getByRole("navigation", { name: "Dispatch" }).getByRole("link", { name: "Publishers" }).click();
    await page.getByRole("heading", { level: 1, name: "Publishers" }).waitFor();
    await page.getByRole("button", { name: "New publisher" }).click();
    await dialog.getByLabel("Target URL").fill("ftp://127.0.0.1/hook");
    await dialog.getByRole("button", { name: "Create publisher" }).click();
    await dialog
      .getByRole("alert")
      .getByText(/target: /)
      .waitFor({ timeout: WAIT_MS });
    assert.deepEqual(await dispatch.publishers(), [], "a refused publisher is not written");
    expectRefusal(problems, 400);
    await dialog.getByLabel("Target URL").fill(receiver.url());
    await dialog.getByLabel("Timeout (seconds)").fill("2");
    await dialog.getByLabel("make a secret").check();
    await screenshot(page, "dispatch-publisher-editor-desktop-light");
    await dialog.getByRole("button", { name: "Create publisher" }).click();
    const shown = (await dialog.locator("[data-secret]").textContent({ timeout: WAIT_MS })) ?? "";
    const [publisher] = await dispatch.publishers();
    assert.ok(publisher !== undefined);
    publisherId = publisher.id;
    assert.deepEqual(
      [publisher.target, publisher.secondsTimeout, publisher.maxAttempts, publisher.active],
      [receiver.url(), 2, null, true],
    );
    assert.equal(shown, publisher.secrets[0]!.secret, "the secret made is shown once");
    await dialog.getByRole("button", { name: "Done" }).first().click();
    await page.locator(`section[data-publisher="${publisherId}"]`).getByText("1 secret").waitFor();

    // A message, sent from the messages page: its page opens, and its attempts fail (nothing listens). The second
    // one (5 s after the first) is awaited too: the next is then minutes away, and cannot beat the click below.
    await page.getByRole("navigation", { name: "Dispatch" }).getByRole("link", { name: "Messages" }).click();
    await page.getByRole("button", { name: "Send a message" }).click();
    await dialog.getByLabel("Payload (a JSON object)").fill('{"order": 42, "text": "parcel"}');
    await dialog.getByRole("button", { name: "Send", exact: true }).click();
    await page.getByRole("heading", { level: 1, name: /Message #\d+/ }).waitFor({ timeout: WAIT_MS });
    messageId = Number(/\/dispatch\/messages\/(\d+)$/.exec(page.url())?.[1]);
    const delivery = page.locator("section.delivery");
    const failedAttempt = delivery.locator('.attempt[data-outcome="retry"]');
    await failedAttempt.nth(1).waitFor({ timeout: WAIT_MS });
    await delivery.locator('[data-delivery-state="scheduled"]').waitFor();
    assert.match((await failedAttempt.first().locator(".attempt-error").textContent()) ?? "", /ECONNREFUSED|refused/i);
    assert.match((await failedAttempt.first().textContent()) ?? "", /no answer/);
    await screenshot(page, "dispatch-message-failed-desktop-light");

    // The overview counts it retrying (GET /api/dispatch/counts), not a page's length.
    const messagePage = page.url();
    await page.goto(`${node.base}/dispatch`);
    await page.locator(".card", { hasText: "Retrying" }).getByText("1", { exact: true }).waitFor({ timeout: WAIT_MS });
    await page.goto(messagePage);
    await delivery.locator('[data-delivery-state="scheduled"]').waitFor({ timeout: WAIT_MS });
    await waitLive(page);

    // The receiver starts; Retry now sends it at once: delivered, an HTTP 200 attempt on top, signed, the two failed
    // attempts all that was spent before it.
    await receiver.start();
    const received = receiver.next();
    await delivery.getByRole("button", { name: /^Retry delivery \d+ now$/ }).click();
    await delivery.locator('[data-delivery-state="delivered"]').waitFor({ timeout: WAIT_MS });
    const ok = delivery.locator('.attempt[data-outcome="delivered"]');
    await ok.getByText("HTTP 200").waitFor({ timeout: WAIT_MS });
    assert.equal(await delivery.locator(".attempt").count(), 3, "every attempt is shown");
    assert.equal(await delivery.locator(".attempt").first().getAttribute("data-outcome"), "delivered");
    const request = await received;
    assert.equal(JSON.parse(request.body).order, 42);
    assert.match(String(request.headers["webhook-signature"]), /^v1,/);
    const { message, deliveries } = await dispatch.message(messageId);
    assert.equal(message.id, messageId);
    assert.equal(deliveries[0]!.state, "delivered");
    // Its request headers are there to read.
    await ok.getByText("Request headers").click();
    await ok.getByText(/webhook-signature: v1,/).waitFor();
  });

  test("a publisher is disabled, enabled and its secret rotated from its row; a topic's recovery is switched", async (t) => {
    assert.ok(publisherId > 0, "the first test made a publisher");
    const opened = await openPage(t, context, `${node.base}/dispatch/publishers?topic=orders`, { viewport: DESKTOP });
    if (opened === null) return;
    const { page } = opened;
    const row = page.locator(`section[data-publisher="${publisherId}"]`);
    await row.waitFor({ timeout: WAIT_MS });
    await waitLive(page);
    await row.getByRole("button", { name: `Disable publisher ${publisherId}` }).click();
    await eventually("the publisher disabled", async () => !(await dispatch.publisher(publisherId)).active);
    await row.getByText("disabled", { exact: true }).waitFor({ timeout: WAIT_MS });
    await row.getByRole("button", { name: `Enable publisher ${publisherId}` }).click();
    await eventually("the publisher enabled", async () => (await dispatch.publisher(publisherId)).active);
    await row.getByText("active", { exact: true }).waitFor({ timeout: WAIT_MS });

    const before = (await dispatch.publisher(publisherId)).secrets[0]!.secret;
    await row.getByRole("button", { name: `Rotate the secret of publisher ${publisherId}` }).click();
    const dialog = page.getByRole("dialog", { name: "Rotate the signing secret?" });
    await dialog.getByRole("button", { name: "Rotate" }).click();
    const fresh = page.getByRole("dialog", { name: "New signing secret" });
    const shown = (await fresh.locator("[data-secret]").textContent({ timeout: WAIT_MS })) ?? "";
    const secrets = (await dispatch.publisher(publisherId)).secrets;
    assert.deepEqual(
      secrets.map((s) => s.secret),
      [shown, before],
      "the new secret first, the old one still signing",
    );
    assert.notEqual(shown, before);
    await fresh.getByRole("button", { name: "Done" }).first().click();
    await row.getByText("2 secrets").waitFor({ timeout: WAIT_MS });

    await page.goto(`${node.base}/dispatch`);
    const recovery = page.getByRole("switch", { name: "Recovery for orders" });
    await recovery.click({ timeout: WAIT_MS });
    await eventually("recovery on", async () => (await dispatch.topic("orders")).recoveryEnabled);
    await page.locator('tr[data-topic="orders"]').getByText("on", { exact: true }).waitFor();
    await recovery.click();
    await eventually("recovery off", async () => !(await dispatch.topic("orders")).recoveryEnabled);
  });

  test("the failing list: a publisher's failures over a window replayed, the row leaves the list", async (t) => {
    await receiver.stop();
    await dispatch.updatePublisher(publisherId, { max_attempts: 1 });
    const sent = await fetch(`${node.base}/api/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ topic: "orders", payload: { order: 43 } }),
    });
    const [deliveryId] = ((await sent.json()) as { id: number[] }).id;
    await eventually("the delivery failed", async () => (await dispatch.delivery(deliveryId!)).state === "failed");
    const opened = await openPage(
      t,
      context,
      `${node.base}/dispatch/deliveries?state=failed&publisher=${publisherId}`,
      { viewport: DESKTOP },
    );
    if (opened === null) return;
    const { page } = opened;
    const row = page.locator(`li[data-delivery="${deliveryId}"]`);
    await row.waitFor({ timeout: WAIT_MS });
    assert.match((await row.textContent()) ?? "", /ECONNREFUSED|refused/i);
    await waitLive(page);
    await receiver.start();
    await page.getByRole("button", { name: `Replay a window of publisher ${publisherId}` }).click();
    const dialog = page.getByRole("dialog", { name: "Replay a window" });
    await dialog.getByRole("button", { name: "Replay" }).click();
    await page.getByText("1 delivery replayed").waitFor({ timeout: WAIT_MS });
    await eventually("delivered", async () => (await dispatch.delivery(deliveryId!)).state === "delivered");
    await row.waitFor({ state: "detached", timeout: WAIT_MS });
  });

  test("every dispatch page renders with no console error, light and dark, desktop and phone", async (t) => {
    // Something failing too: a second publisher whose receiver never listens, one attempt.
    await dispatch.createPublisher({
      topic: "orders",
      target: nowhere.url("/never"),
      type: "http",
      active: true,
      max_attempts: 1,
    });
    const sent = await fetch(`${node.base}/api/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ topic: "orders", payload: { order: 44, lines: [{ sku: "A-1", qty: 2 }] } }),
    });
    const ids = ((await sent.json()) as { id: number[] }).id;
    await eventually("one failed, one delivered", async () => {
      const states = await Promise.all(ids.map(async (id) => (await dispatch.delivery(id)).state));
      return states.includes("failed") && states.includes("delivered");
    });
    const views: [string, string, string][] = [
      ["dispatch", "/dispatch", "Dispatch"],
      ["dispatch-publishers", "/dispatch/publishers", "Publishers"],
      ["dispatch-messages", "/dispatch/messages", "Messages"],
      ["dispatch-message", `/dispatch/messages/${messageId}`, `Message #${messageId}`],
      ["dispatch-deliveries", "/dispatch/deliveries?state=failed", "Deliveries"],
    ];
    for (const [device, viewport] of [
      ["desktop", DESKTOP],
      ["phone", PHONE],
    ] as const) {
      for (const scheme of ["light", "dark"] as const) {
        const opened = await openPage(t, context, `${node.base}/dispatch`, { viewport, colorScheme: scheme });
        if (opened === null) return;
        const { page } = opened;
        for (const [name, path, heading] of views) {
          await page.goto(`${node.base}${path}`);
          await page.getByRole("heading", { level: 1 }).filter({ hasText: heading }).waitFor({ timeout: WAIT_MS });
          await waitLive(page);
          if (name === "dispatch") await page.locator('tr[data-topic="orders"]').waitFor();
          if (name === "dispatch-publishers") await page.locator("section[data-publisher]").nth(1).waitFor();
          if (name === "dispatch-messages") await page.locator("li[data-message]").nth(2).waitFor();
          if (name === "dispatch-message") await page.locator(".attempt").first().waitFor();
          if (name === "dispatch-deliveries") await page.locator("li[data-delivery]").first().waitFor();
          await page.waitForTimeout(200); // charts and relative times settle
          const overflow = await page.evaluate(() => {
            const browser = globalThis as unknown as {
              document: { documentElement: { scrollWidth: number } };
              innerWidth: number;
            };
            return browser.document.documentElement.scrollWidth - browser.innerWidth;
          });
          await screenshot(page, `${name}-${device}-${scheme}`);
          assert.ok(overflow <= 0, `${name} on ${device} is ${overflow}px wider than the screen`);
        }
      }
    }
  });
});

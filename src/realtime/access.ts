/**
 * Who may follow or publish to which channel (docs/live-protocol.md):
 * - task and node channels show the system's own data: with an API token set (CONVEYOR_TOKEN, the read-only
 *   CONVEYOR_READ_TOKEN or CONVEYOR_ADMIN_TOKEN), only a connection that presented one may follow them;
 * - an application channel is followed with a subscription token that grants it (minted by the application's own
 *   server for its user), or with an API token; it is published to with a grant to publish, or the write token;
 * - with no API token and no live secret configured (a development node), everything is open.
 * A refusal says why, with a code, and changes nothing.
 */
import { tokenMatches } from "../core/bearer.ts";
import { type Channel, isAppChannel, isSystemChannel, parseChannel } from "../core/channels.ts";
import { grantAllows, type LiveGrant, type LiveTokenRefusal } from "../core/live-token.ts";
import type { Refusal } from "./protocol.ts";

export type AccessPolicy = {
  /** The API's tokens; null where the node has none. The admin token may do all the write token may. */
  tokens: { admin: string | null; write: string | null; read: string | null };
  /** Checks a subscription token: null when the node has no live secret. */
  verify: ((token: string) => LiveGrant | LiveTokenRefusal) | null;
};

export class Access {
  readonly #policy: AccessPolicy;
  /** Whether this connection presented an API token (or none is needed): it may follow every channel. */
  #api: boolean;
  /** Whether it presented the write token (or none is needed): it may publish anywhere. */
  #write: boolean;

  constructor(policy: AccessPolicy) {
    this.#policy = policy;
    const { admin, write, read } = policy.tokens;
    this.#api = admin === null && write === null && read === null;
    this.#write = write === null;
  }

  /** Takes a token offered for the whole connection: true when it is one of the API's. */
  presentApiToken(token: string | null): boolean {
    if (token === null) return this.#api;
    const { admin, write, read } = this.#policy.tokens;
    if (admin !== null && tokenMatches(admin, token)) this.#api = this.#write = true;
    else if (write !== null && tokenMatches(write, token)) this.#api = this.#write = true;
    else if (read !== null && tokenMatches(read, token)) this.#api = true;
    return this.#api;
  }

  get hasApiToken(): boolean {
    return this.#api;
  }

  /** The channels named, parsed and allowed, or the refusal of the whole subscription. */
  follow(names: string[], token: string | null): Channel[] | Omit<Refusal, "id"> {
    const channels: Channel[] = [];
    let grant: LiveGrant | null = null;
    if (token !== null) {
      const checked = this.#check(token);
      if (typeof checked === "string") return refusal(checked);
      grant = checked;
    }
    for (const name of names) {
      const channel = parseChannel(name);
      if (channel === null)
        return { code: "invalid_channel", message: `${JSON.stringify(name).slice(0, 210)} is not a channel name` };
      if (isSystemChannel(channel)) {
        if (!this.#api) return { code: "unauthorized", message: `${name} needs the API token` };
      } else if (!this.#open && !this.#api && !(grant !== null && grantAllows(grant.channels, name))) {
        return { code: "forbidden", message: `no token given grants ${name}` };
      }
      channels.push(channel);
    }
    return channels;
  }

  /** Whether the connection may publish to `channel`, or the refusal. */
  publish(channel: string, token: string | null): Omit<Refusal, "ref"> | null {
    if (!isAppChannel(channel)) {
      return {
        code: "invalid_channel",
        message: `${JSON.stringify(channel).slice(0, 210)} is not an application channel`,
      };
    }
    if (this.#open || this.#write) return null;
    if (token === null) return { code: "forbidden", message: `publishing to ${channel} needs a token that grants it` };
    const checked = this.#check(token);
    if (typeof checked === "string") return refusal(checked);
    return grantAllows(checked.publish, channel)
      ? null
      : { code: "forbidden", message: `the token does not grant publishing to ${channel}` };
  }

  /** No API token and no live secret: a node open to all. */
  get #open(): boolean {
    const { admin, write, read } = this.#policy.tokens;
    return admin === null && write === null && read === null && this.#policy.verify === null;
  }

  #check(token: string): LiveGrant | LiveTokenRefusal {
    if (this.#policy.verify === null) return "token_signature"; // no secret: no subscription token can be valid
    return this.#policy.verify(token);
  }
}

function refusal(code: LiveTokenRefusal): Omit<Refusal, "id"> {
  const messages: Record<LiveTokenRefusal, string> = {
    token_malformed: "the subscription token is malformed",
    token_signature: "the subscription token's signature is not valid here",
    token_expired: "the subscription token has expired",
  };
  return { code, message: messages[code] };
}

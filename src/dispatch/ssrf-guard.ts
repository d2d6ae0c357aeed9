/**
 * The SSRF guard: a webhook target may name any host, so the address actually dialled is checked, not the URL.
 * Only global unicast addresses pass (ipaddr.js's `unicast` range): loopback, private (10/8, 172.16/12, 192.168/16),
 * link-local (169.254/16, where cloud metadata lives, fe80::/10), unique-local (fc00::/7), carrier-grade NAT,
 * unspecified (0.0.0.0, ::), multicast, broadcast, documentation, benchmarking, reserved, and the IPv6 forms that
 * embed an IPv4 address (6to4, Teredo, NAT64) are refused; an IPv4-mapped IPv6 address is judged as its IPv4.
 * An allow-list of networks (`CONVEYOR_DISPATCH_ALLOW_NETS="10.1.0.0/16,127.0.0.1"`) lets on-premise receivers
 * through, as Svix's whitelist_subnets does.
 *
 * The check runs inside the socket's `lookup` (guardedLookup): the socket connects to the addresses the check
 * passed and to nothing else, so a name that resolves to a public address when checked and a private one when
 * dialled (DNS rebinding) cannot get through. A URL whose host is an IP literal skips DNS, and is checked as it is
 * (literalRefusal) before any socket is made.
 */
import type { LookupAddress, LookupAllOptions, LookupOptions } from "node:dns";
import { lookup as dnsLookup } from "node:dns";
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";
import { ConfigError } from "../core/errors.ts";

export type Network = [ipaddr.IPv4 | ipaddr.IPv6, number];

export type AddressPolicy = { allow: Network[] };

/** The lookup function sockets take (net.connect's `lookup` option), as dns.lookup is. */
export type LookupFunction = (
  hostname: string,
  options: LookupOptions,
  callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
) => void;

export class AddressRefusedError extends Error {
  readonly code = "ERR_DISPATCH_ADDRESS_REFUSED";
  constructor(message: string) {
    super(message);
    this.name = "AddressRefusedError";
  }
}

/** Reads an allow-list: networks (`10.0.0.0/8`, `fd00::/8`) or addresses, separated by commas or spaces. */
export function parseAllowNets(text: string | undefined): Network[] {
  if (text === undefined || text.trim() === "") return [];
  return text
    .split(/[\s,]+/)
    .filter((part) => part !== "")
    .map((part) => {
      try {
        if (part.includes("/")) return ipaddr.parseCIDR(part);
        const address = ipaddr.parse(part);
        return [address, address.kind() === "ipv4" ? 32 : 128] as Network;
      } catch {
        throw new ConfigError(`CONVEYOR_DISPATCH_ALLOW_NETS: ${JSON.stringify(part)} is not an address or a network`);
      }
    });
}

/** Why `address` may not be dialled under `policy`, or null when it may. */
export function addressRefusal(address: string, policy: AddressPolicy): string | null {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.parse(address);
  } catch {
    return `${address} is not an IP address`;
  }
  if (parsed.kind() === "ipv6" && (parsed as ipaddr.IPv6).isIPv4MappedAddress())
    parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  for (const [network, bits] of policy.allow) {
    if (network.kind() === parsed.kind() && parsed.match([network, bits] as never)) return null;
  }
  const range = parsed.range();
  return range === "unicast" ? null : `${address} is a ${range} address`;
}

/** For a URL's host that is an IP literal (`127.0.0.1`, `[::1]`): why it is refused, or null. Names return null. */
export function literalRefusal(hostname: string, policy: AddressPolicy): string | null {
  const host = hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname;
  return isIP(host) === 0 ? null : addressRefusal(host, policy);
}

/**
 * `resolve` (dns.lookup by default) with the guard inside: the addresses it returns that the policy refuses are
 * dropped, and when none is left the lookup fails with AddressRefusedError, so the socket never dials.
 */
export function guardedLookup(
  policy: AddressPolicy,
  resolve: LookupFunction = dnsLookup as LookupFunction,
): LookupFunction {
  return (hostname, options, callback) => {
    const all: LookupAllOptions = { ...options, all: true };
    resolve(hostname, all, (error, found) => {
      if (error !== null) return callback(error, "");
      const addresses = Array.isArray(found) ? found : [{ address: found, family: isIP(found) }];
      const refusals: string[] = [];
      const allowed = addresses.filter(({ address }) => {
        const refusal = addressRefusal(address, policy);
        if (refusal !== null) refusals.push(refusal);
        return refusal === null;
      });
      if (allowed.length === 0) {
        const why = refusals.length > 0 ? refusals.join("; ") : "it has no address";
        return callback(new AddressRefusedError(`refused to connect to ${hostname}: ${why}`), "");
      }
      if (options.all === true) return callback(null, allowed);
      callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
}

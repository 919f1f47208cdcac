import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * The SSRF guard of webhooks (README "Webhooks", W3): an endpoint whose host is, or resolves to,
 * a loopback, private, link-local or unspecified address is refused unless WEBHOOK_ALLOW_PRIVATE.
 * Every address a name resolves to is checked, at creation and again on every delivery — there
 * through the connection's own lookup, so the address checked is the address connected to (a
 * name re-pointed between a check and the connection cannot slip through).
 */
const PRIVATE = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
] as const)
  PRIVATE.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
] as const)
  PRIVATE.addSubnet(net, bits, 'ipv6');

/** Loopback, private, link-local or unspecified (IPv4-mapped IPv6 addresses count as their IPv4). */
export function isPrivateAddress(address: string): boolean {
  const v = isIP(address);
  if (v === 0) return true; // not an address at all: never trusted
  return PRIVATE.check(address, v === 4 ? 'ipv4' : 'ipv6');
}

export class WebhookAddressError extends Error {
  override name = 'WebhookAddressError';
}

export type Resolve = (host: string) => Promise<LookupAddress[]>;
const resolveAll: Resolve = (host) =>
  new Promise((resolve, reject) => dnsLookup(host, { all: true, verbatim: true }, (err, addrs) => (err ? reject(err) : resolve(addrs))));

/** `[::1]` → `::1`: URL keeps IPv6 literals in brackets. */
const bare = (hostname: string) => hostname.replace(/^\[(.*)\]$/, '$1');

/**
 * Every address `hostname` stands for, refused (WebhookAddressError, a message fit for an admin)
 * if any is private and `allowPrivate` is off, or if the name does not resolve.
 */
export async function checkedAddresses(hostname: string, allowPrivate: boolean, resolve: Resolve = resolveAll): Promise<LookupAddress[]> {
  const host = bare(hostname);
  const literal = isIP(host);
  let addrs: LookupAddress[];
  if (literal) addrs = [{ address: host, family: literal }];
  else {
    try {
      addrs = await resolve(host);
    } catch (e) {
      throw new WebhookAddressError(`The host ${host} cannot be resolved (${(e as NodeJS.ErrnoException).code ?? 'lookup failed'}).`);
    }
    if (!addrs.length) throw new WebhookAddressError(`The host ${host} cannot be resolved.`);
  }
  if (!allowPrivate) {
    const bad = addrs.find((a) => isPrivateAddress(a.address));
    if (bad) {
      throw new WebhookAddressError(
        `${host} ${literal ? 'is' : `resolves to ${bad.address}, which is`} a loopback, private or link-local address; webhook endpoints must be public (WEBHOOK_ALLOW_PRIVATE=true allows them, for development).`,
      );
    }
  }
  return addrs;
}

/** A `lookup` for http(s).request that connects only to addresses `checkedAddresses` accepts. */
export function guardedLookup(allowPrivate: boolean, resolve: Resolve = resolveAll): LookupFunction {
  return (hostname, options, callback) => {
    checkedAddresses(hostname, allowPrivate, resolve).then(
      (addrs) => {
        const wanted = options.family === 4 || options.family === 6 ? addrs.filter((a) => a.family === options.family) : addrs;
        if (!wanted.length) return callback(Object.assign(new Error(`no IPv${options.family} address for ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
        if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, wanted);
        callback(null, wanted[0]!.address, wanted[0]!.family);
      },
      (e: Error) => callback(e, '', 0),
    );
  };
}

/**
 * undici, loaded when the first origin request or health probe needs it rather than at
 * startup: it is the largest module the node loads (about 20 MiB of resident memory measured
 * with its HTTP parser), and a node that serves only hits never needs it.
 */
type Undici = typeof import('undici');

let loading: Promise<Undici> | undefined;

export function loadUndici(): Promise<Undici> {
  loading ??= import('undici');
  return loading;
}

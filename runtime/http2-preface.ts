/** The HTTP/2 client connection preface (RFC 9113 §3.4), which every gRPC connection starts with. */
export const CLIENT_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/**
 * Where the first bytes of a connection stand: `partial` while they are a strict prefix of the
 * preface (keep waiting), `complete` once it is all there, `other` as soon as they differ
 * (an HTTP/1.1 request, TLS to a plaintext port, garbage).
 */
export function prefaceState(head: Buffer): "partial" | "complete" | "other" {
  const n = Math.min(head.length, CLIENT_PREFACE.length);
  if (!head.subarray(0, n).equals(CLIENT_PREFACE.subarray(0, n))) return "other";
  return n === CLIENT_PREFACE.length ? "complete" : "partial";
}

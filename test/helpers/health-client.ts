/**
 * A grpc.health.v1 client for specs with hand-rolled encoding, independent of
 * the server's descriptors: HealthCheckRequest is `string service = 1`,
 * HealthCheckResponse is `ServingStatus status = 1`.
 */
import * as grpc from "@grpc/grpc-js";

export const STATUS_NAMES = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

function encodeRequest(service: string): Buffer {
  const name = Buffer.from(service, "utf8");
  if (name.length > 127) throw new Error("service name too long for this test encoder");
  return name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a, name.length]), name]);
}

function decodeResponse(bytes: Buffer): string {
  // An absent field is UNKNOWN (0); otherwise tag 0x08 and a one-byte varint.
  const status = bytes.length >= 2 && bytes[0] === 0x08 ? bytes[1]! : 0;
  return STATUS_NAMES[status] ?? `STATUS_${status}`;
}

export class HealthClient {
  private readonly client: grpc.Client;

  constructor(address: string) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure());
  }

  /** Resolves with the status name; rejects with the grpc-js error (NOT_FOUND for an unknown service). */
  check(service: string): Promise<string> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest("/grpc.health.v1.Health/Check", encodeRequest, decodeResponse, service, { deadline: Date.now() + 3000 }, (err, value) =>
        err ? reject(err) : resolve(value!),
      );
    });
  }

  /** Opens a Watch; `updates` receives every status, then "END" (or "ERROR <code>"). */
  watch(service: string, onUpdate: (update: string) => void): grpc.ClientReadableStream<string> {
    const call = this.client.makeServerStreamRequest("/grpc.health.v1.Health/Watch", encodeRequest, decodeResponse, service);
    call.on("data", (s: string) => onUpdate(s));
    call.on("error", (e: grpc.ServiceError) => onUpdate(`ERROR ${e.code}`));
    call.on("end", () => onUpdate("END"));
    return call;
  }

  close(): void {
    this.client.close();
  }
}

import { expect } from "chai";
import { EtcdAuthenticationFailedError, EtcdPermissionDeniedError } from "etcd3";
import { describeFailure, etcdFailureKind, failureReason, isConfigurationFailure } from "./etcd-errors";

describe("etcd errors: outage, refusal or TLS", () => {
  it("sorts refusals, TLS failures and outages as grpc-js and etcd3 word them", () => {
    expect(etcdFailureKind(new EtcdPermissionDeniedError("etcdserver: permission denied"))).to.equal("access");
    expect(etcdFailureKind(new EtcdAuthenticationFailedError("etcdserver: authentication failed, invalid user ID or password"))).to.equal("access");
    expect(etcdFailureKind(new Error("14 UNAVAILABLE: No connection established. Last error: Error: 00F8D1B5:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate"))).to.equal("tls");
    expect(etcdFailureKind(new Error("14 UNAVAILABLE: No connection established. Last error: Error: unable to verify the first certificate"))).to.equal("tls");
    expect(etcdFailureKind(new Error("14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:2379"))).to.equal("unreachable");
    expect(etcdFailureKind(new Error("4 DEADLINE_EXCEEDED: Deadline exceeded"))).to.equal("unreachable");
    expect(isConfigurationFailure(new Error("connect ECONNREFUSED"))).to.equal(false);
  });

  it("words them for a sentence, and gives a one-line reason without a stack", () => {
    expect(describeFailure(new EtcdPermissionDeniedError("etcdserver: permission denied"))).to.equal("etcd refused access: etcdserver: permission denied");
    expect(describeFailure(new Error("connect ECONNREFUSED"))).to.equal("etcd unreachable: connect ECONNREFUSED");
    const reason = failureReason(new Error("boom"));
    expect(reason).to.equal("boom");
    expect(reason).to.not.include("\n");
  });
});

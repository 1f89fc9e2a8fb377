/**
 * TLS to an IP address without a server name. grpc-js sets the TLS ServerName (SNI) to the
 * target's host even when it is an IP address, which RFC 6066 forbids and for which Node prints
 * its DEP0123 deprecation warning. Without a ServerName Node checks the certificate against the
 * connection's host instead, which is the same IP address: the check is unchanged, only the
 * forbidden SNI goes.
 */
import * as grpc from "@grpc/grpc-js";
import { isIP } from "node:net";
import type { ConnectionOptions } from "node:tls";

type ConnectorArgs = Parameters<grpc.ChannelCredentials["_createSecureConnector"]>;

/**
 * Wraps channel credentials so that no IP address is sent as the TLS server name. Insecure
 * credentials come back as they are.
 */
export function withoutIpServerName(credentials: grpc.ChannelCredentials): grpc.ChannelCredentials {
  if (!credentials._isSecure() || credentials instanceof IpSafeChannelCredentials) return credentials;
  return new IpSafeChannelCredentials(credentials);
}

class IpSafeChannelCredentials extends grpc.ChannelCredentials {
  constructor(private readonly inner: grpc.ChannelCredentials) {
    super();
  }

  override compose(callCredentials: grpc.CallCredentials): grpc.ChannelCredentials {
    return new IpSafeChannelCredentials(this.inner.compose(callCredentials));
  }

  _isSecure(): boolean {
    return this.inner._isSecure();
  }

  _equals(other: grpc.ChannelCredentials): boolean {
    return other instanceof IpSafeChannelCredentials && this.inner._equals(other.inner);
  }

  _createSecureConnector(...args: ConnectorArgs): grpc.experimental.SecureConnector {
    const connector = this.inner._createSecureConnector(...args);
    // grpc-js 1.14 keeps the options it passes to tls.connect on the connector. Credentials that
    // build them per connection (certificate providers) keep the warning.
    const options = (connector as unknown as { connectionOptions?: ConnectionOptions }).connectionOptions;
    if (options && typeof options.servername === "string" && isIP(options.servername) !== 0) delete options.servername;
    return connector;
  }
}

/**
 * A TCP proxy in front of a real Postgres that, once armed, lets the next COMMIT reach the
 * server and then cuts that connection before the server's answer reaches the client: the
 * database committed, the client sees "Connection terminated". The one network fault a
 * producer cannot tell from a failed commit.
 */
import { startRelay } from "./tcp-proxy";

export interface CommitCutProxy {
  /** A connection string through the proxy, for `database` on the same server. */
  urlOf(database: string): string;
  /** Cuts the connection that sends the next COMMIT, right after the server answered it. */
  cutAfterNextCommit(): void;
  /** How many connections were cut so far. */
  readonly cuts: number;
  close(): Promise<void>;
}

/** A simple-protocol Query message carrying exactly `COMMIT` (what pg sends for `query("COMMIT")`). */
const COMMIT_QUERY = Buffer.concat([Buffer.from("Q"), Buffer.from([0, 0, 0, 11]), Buffer.from("COMMIT\0")]);

export async function startCommitCutProxy(serverPort: number): Promise<CommitCutProxy> {
  let armed = false;
  let cuts = 0;
  const relay = await startRelay("127.0.0.1", serverPort, (client, upstream) => {
    // This connection sent the armed COMMIT: the server's next bytes are its answer.
    let awaitingCommitAnswer = false;
    client.on("data", (chunk: Buffer) => {
      if (armed && chunk.includes(COMMIT_QUERY)) {
        armed = false;
        awaitingCommitAnswer = true;
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (awaitingCommitAnswer) {
        // The server answered COMMIT (it committed); the client never hears it.
        cuts++;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
  });
  return {
    urlOf: (database) => `postgres://postgres@127.0.0.1:${relay.port}/${database}`,
    cutAfterNextCommit() {
      armed = true;
    },
    get cuts() {
      return cuts;
    },
    close: () => relay.close(),
  };
}

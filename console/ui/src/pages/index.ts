/**
 * The UI side of each console page, by the name its server module uses. A
 * new page is one more entry here (and a module on the server).
 */
import type { FunctionComponent } from "preact";
import type { SessionInfo } from "../api";
import { ApiPage } from "./api-page";
import { AuditPage } from "./audit-page";
import { ConfigPage } from "./config-page";
import { ServicesPage } from "./services-page";
import { TracesPage } from "./traces-page";
import { TrafficPage } from "./traffic-page";
import { TransactionsPage } from "./transactions-page";

export interface PageProps {
  session: SessionInfo;
  info: unknown;
  /** Path segments after the page name in the URL hash. */
  path: string[];
  /** Parameters after `?` in the URL hash: a page's filters, which survive a reload. */
  query: URLSearchParams;
}

export const PAGES: Record<string, FunctionComponent<PageProps>> = {
  services: ServicesPage,
  config: ConfigPage,
  api: ApiPage,
  traffic: TrafficPage,
  transactions: TransactionsPage,
  traces: TracesPage,
  audit: AuditPage,
};

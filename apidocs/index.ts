/**
 * API docs from the project's protos: `protomesh docs` (Markdown, one HTML
 * page) and the local server behind `protomesh docs --serve`.
 */
export { docsCommand, writeDocs } from "./docs-command";
export { buildDescriptors, type ProjectDescriptors } from "./descriptor-set";
export { buildModel, type DocModel } from "./model";
export { renderMarkdown } from "./markdown";
export { renderHtml, type HtmlOptions } from "./html";
export { startDocsServer, type DocsServer, type DocsServerOptions } from "./try-server";

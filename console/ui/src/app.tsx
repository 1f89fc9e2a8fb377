import { useEffect, useState } from "preact/hooks";
import { ApiError, get, post, setCsrf, type SessionInfo } from "./api";
import { Login } from "./login";
import { PAGES } from "./pages";

/** The shell: session, navigation from the pages the server offers, hash routing. */
export function App() {
  const [session, setSession] = useState<SessionInfo | null | undefined>(undefined);
  const [error, setError] = useState("");
  const [route, setRoute] = useState(location.hash.slice(2));

  const load = () =>
    get<SessionInfo>("/api/session").then(
      (s) => {
        setCsrf(s.csrf);
        setSession(s);
      },
      (e: unknown) => (e instanceof ApiError && e.status === 401 ? setSession(null) : setError(String((e as Error).message))),
    );

  useEffect(() => {
    void load();
    const onHash = () => setRoute(location.hash.slice(2));
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);

  if (error) return <p class="error">The console did not answer: {error}</p>;
  if (session === undefined) return <p class="muted">Loading…</p>;
  if (session === null) return <Login onSignedIn={load} />;

  const pages = session.pages.filter((p) => PAGES[p.name]);
  // `#/page/a/b?k=v`: path segments, then a page's filters (kept in the URL so a reload keeps them).
  const q = route.indexOf("?");
  const [name, ...rest] = (q < 0 ? route : route.slice(0, q)).split("/");
  const query = new URLSearchParams(q < 0 ? "" : route.slice(q + 1));
  const current = pages.find((p) => p.name === name) ?? pages[0]!;
  const Page = PAGES[current.name]!;
  return (
    <div class="shell">
      <header>
        <strong>protomesh</strong>
        <nav>
          {pages.map((p) => (
            <a key={p.name} href={`#/${p.name}`} class={p.name === current.name ? "active" : ""} data-page={p.name}>
              {p.title}
            </a>
          ))}
        </nav>
        <span class="who" data-testid="who">
          {session.user} ({session.role})
          {session.auth === "users" && (
            <button class="link" onClick={() => post("/api/logout").then(() => setSession(null))}>
              sign out
            </button>
          )}
        </span>
      </header>
      <main>
        <Page session={session} info={current.info} path={rest.map(decodeURIComponent)} query={query} />
      </main>
    </div>
  );
}

import { useState } from "preact/hooks";
import { post, setCsrf, type SessionInfo } from "./api";

export function Login({ onSignedIn }: { onSignedIn: () => void }) {
  const [user, setUser] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const submit = (e: Event) => {
    e.preventDefault();
    post<SessionInfo>("/api/login", { user, password }).then(
      (s) => {
        setCsrf(s.csrf);
        onSignedIn();
      },
      (err: Error) => setError(err.message),
    );
  };
  return (
    <form class="login" onSubmit={submit}>
      <h1>protomesh console</h1>
      <label>
        User <input name="user" value={user} onInput={(e) => setUser(e.currentTarget.value)} autocomplete="username" />
      </label>
      <label>
        Password <input name="password" type="password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} autocomplete="current-password" />
      </label>
      <button type="submit">Sign in</button>
      {error && <p class="error">{error}</p>}
    </form>
  );
}
